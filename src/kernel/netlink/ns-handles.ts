/**
 * Handles (an fd of the namespace file and an rtnetlink socket inside it) for the sandbox namespaces
 * one burst of synchronous work touches. A join does five or six steps in the sandbox's namespace;
 * opening the file, entering the namespace and making a socket for each of them cost about a tenth
 * of a millisecond every time. The handles live until the event loop next turns (setImmediate), so
 * they are shared by the steps of one operation and never outlive it: an open handle would keep a
 * deleted sandbox's namespace (and everything in it) alive.
 */
import { resolve } from 'node:path';
import { closeQuietly, type Libc, openNamespaceFile, type ThreadNamespace } from './libc.js';
import { RtnlSocket } from './socket.js';

interface Handle {
  fd: number;
  socket?: RtnlSocket;
}

export class BurstNamespaceHandles {
  private readonly open = new Map<string, Handle>();
  private flushScheduled: NodeJS.Immediate | undefined;

  constructor(
    private readonly libc: Libc,
    private readonly thread: ThreadNamespace,
  ) {}

  /** An fd of the namespace at `path`; owned by this cache (do not close it). */
  fd(path: string): number {
    return this.handle(path).fd;
  }

  /** Run `fn` with a socket inside the namespace at `path`. A failure drops the socket: its state is unknown. */
  withSocket<T>(path: string, what: string, fn: (socket: RtnlSocket) => T): T {
    const handle = this.handle(path);
    handle.socket ??= this.thread.withNetns(handle.fd, what, () => RtnlSocket.open(this.libc));
    try {
      return fn(handle.socket);
    } catch (err) {
      handle.socket.close();
      delete handle.socket;
      throw err;
    }
  }

  /** Forget a namespace now (it is being deleted or re-created at the same path). */
  evict(path: string): void {
    const key = resolve(path);
    const handle = this.open.get(key);
    if (!handle) return;
    this.open.delete(key);
    release(handle);
  }

  flush(): void {
    if (this.flushScheduled) clearImmediate(this.flushScheduled);
    this.flushScheduled = undefined;
    for (const handle of this.open.values()) release(handle);
    this.open.clear();
  }

  private handle(path: string): Handle {
    const key = resolve(path);
    let handle = this.open.get(key);
    if (!handle) {
      handle = { fd: openNamespaceFile(key) };
      this.open.set(key, handle);
      this.flushScheduled ??= setImmediate(() => this.flush());
    }
    return handle;
  }
}

function release(handle: Handle): void {
  handle.socket?.close();
  closeQuietly(handle.fd);
}
