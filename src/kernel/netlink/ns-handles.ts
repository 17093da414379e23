/**
 * Handles (an fd of the namespace file and an rtnetlink socket inside it) for the sandbox namespaces
 * one burst of synchronous work touches. A join does five or six steps in the sandbox's namespace;
 * opening the file, entering the namespace and making a socket for each of them cost about a tenth
 * of a millisecond every time. The handles live until the event loop next turns (setImmediate), so
 * they are shared by the steps of one operation and never outlive it: an open handle would keep a
 * deleted sandbox's namespace (and everything in it) alive.
 *
 * Except for namespaces this kernel made itself (`keep`): they end only through deleteNetns, which
 * evicts them first, so their handles can outlive a burst; the last KEPT_NAMESPACES used stay open, and
 * the connect right after a sandbox's creation (and every later one) skips opening them again. Another
 * runtime's namespace (adopted, followed) is never kept: its life is not ours to extend.
 *
 * The burst also remembers the index of the link it made last in a namespace (a veth's sandbox end, from
 * the kernel's echo of the creation), so the address step right after needs no lookup by name. Until
 * links are made, renamed, moved or deleted again, and only for the burst: by the next turn of the event
 * loop a process in the sandbox may have renamed it.
 */
import { resolve } from 'node:path';
import { closeQuietly, type Libc, openNamespaceFile, type ThreadNamespace } from './libc.js';
import { RtnlSocket } from './socket.js';

/** Namespaces made here whose handles stay open across operations (least recently used closed first). */
const KEPT_NAMESPACES = 32;

interface Handle {
  fd: number;
  socket?: RtnlSocket;
}

export class BurstNamespaceHandles {
  private readonly open = new Map<string, Handle>();
  /** Long-lived handles, least recently used first. */
  private readonly kept = new Map<string, Handle>();
  private flushScheduled: NodeJS.Immediate | undefined;
  /** The link made last in this burst: `path\0name` and its index in that namespace. */
  private made: { key: string; index: number } | undefined;

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

  /**
   * Keep the handle of the namespace at `path` (made by this kernel) open past the burst, with `socket`
   * (one already open inside it) if given; the least recently used beyond KEPT_NAMESPACES are closed.
   */
  keep(path: string, socket?: RtnlSocket): void {
    const key = resolve(path);
    const handle = this.handle(key);
    this.open.delete(key);
    if (socket) {
      if (handle.socket) socket.close();
      else handle.socket = socket;
    }
    this.kept.set(key, handle);
    for (const [oldest, old] of this.kept) {
      if (this.kept.size <= KEPT_NAMESPACES) break;
      this.kept.delete(oldest);
      release(old);
    }
  }

  /** `name` in the namespace at `path` was just made with `index` (it replaces what was remembered). */
  rememberIndex(path: string, name: string, index: number): void {
    this.made = { key: `${resolve(path)}\0${name}`, index };
    this.flushScheduled ??= setImmediate(() => this.flush());
  }

  /** The index of `name` in the namespace at `path` if it is the link just made (and nothing changed links since). */
  knownIndex(path: string, name: string): number | undefined {
    return this.made !== undefined && this.made.key === `${resolve(path)}\0${name}` ? this.made.index : undefined;
  }

  /** Links are being made, renamed, moved or deleted: what was remembered may no longer hold. */
  forgetIndex(): void {
    this.made = undefined;
  }

  /** Forget a namespace now (it is being deleted or re-created at the same path). */
  evict(path: string): void {
    const key = resolve(path);
    this.made = undefined;
    for (const map of [this.open, this.kept]) {
      const handle = map.get(key);
      if (!handle) continue;
      map.delete(key);
      release(handle);
    }
  }

  /** Close the burst's handles (the kept ones stay). */
  flush(): void {
    if (this.flushScheduled) clearImmediate(this.flushScheduled);
    this.flushScheduled = undefined;
    this.made = undefined;
    for (const handle of this.open.values()) release(handle);
    this.open.clear();
  }

  /** Close everything, kept handles included. */
  close(): void {
    this.flush();
    for (const handle of this.kept.values()) release(handle);
    this.kept.clear();
  }

  private handle(path: string): Handle {
    const key = resolve(path);
    const kept = this.kept.get(key);
    if (kept) {
      // Most recently used last.
      this.kept.delete(key);
      this.kept.set(key, kept);
      return kept;
    }
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
