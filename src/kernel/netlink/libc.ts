/**
 * The few libc calls the netlink kernel needs, loaded in-process with koffi, and the one discipline that
 * makes per-namespace work safe from JavaScript: a socket, a mount or a /proc/sys file belongs to the
 * network namespace its *thread* is in when it is created or opened. So `ThreadNamespace.run` setns()es
 * the main thread into the target, runs a synchronous function and setns()es back before returning to the
 * event loop — no other JavaScript can run while the thread is away, and libuv's pool threads never move.
 */
import { closeSync, openSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import koffi from 'koffi';
import { KernelError } from '../../errors.js';

export const CLONE_NEWNET = 0x40000000;
const MS_BIND = 0x1000;
const MNT_DETACH = 2;

export interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, length: number): number;
  send(fd: number, buffer: Buffer, length: number, flags: number): number;
  recv(fd: number, buffer: Buffer, length: number, flags: number): number;
  close(fd: number): number;
  setns(fd: number, nstype: number): number;
  unshare(flags: number): number;
  mount(source: string, target: string, fstype: string | null, flags: number, data: null): number;
  umount2(target: string, flags: number): number;
  /** send/recv on a libuv pool thread: for calls that may block (a link deletion waits for the kernel). */
  sendAsync(fd: number, buffer: Buffer, length: number, flags: number): Promise<number>;
  recvAsync(fd: number, buffer: Buffer, length: number, flags: number): Promise<number>;
  bind(fd: number, address: Buffer, length: number): number;
  /** poll(2) on a libuv pool thread: waits for a socket to become readable without blocking the event loop. */
  pollAsync(fds: Buffer, count: number, timeoutMs: number): Promise<number>;
}

type AsyncCapable = ((...args: unknown[]) => unknown) & {
  async: (...args: unknown[]) => void;
};

function promisifyAsync(fn: AsyncCapable): (...args: unknown[]) => Promise<number> {
  return (...args) =>
    new Promise((resolve, reject) => fn.async(...args, (err: unknown, result: number) => (err ? reject(err) : resolve(result))));
}

export function loadLibc(): Libc {
  const lib = koffi.load('libc.so.6');
  const send = lib.func('intptr_t send(int fd, const void *buf, size_t len, int flags)') as AsyncCapable;
  const recv = lib.func('intptr_t recv(int fd, _Out_ void *buf, size_t len, int flags)') as AsyncCapable;
  const poll = lib.func('int poll(_Inout_ void *fds, unsigned long nfds, int timeout)') as AsyncCapable;
  return {
    sendAsync: promisifyAsync(send),
    pollAsync: promisifyAsync(poll),
    bind: lib.func('int bind(int fd, const void *addr, uint32_t len)'),
    recvAsync: promisifyAsync(recv),
    socket: lib.func('int socket(int domain, int type, int protocol)'),
    setsockopt: lib.func('int setsockopt(int fd, int level, int optname, const void *optval, uint32_t optlen)'),
    send: send as Libc['send'],
    recv: recv as Libc['recv'],
    close: lib.func('int close(int fd)'),
    setns: lib.func('int setns(int fd, int nstype)'),
    unshare: lib.func('int unshare(int flags)'),
    mount: lib.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const void *data)'),
    umount2: lib.func('int umount2(const char *target, int flags)'),
  };
}

/** errno of the last failed libc call, by name ("ENOENT"), when the platform knows it. */
export function lastErrno(): string | undefined {
  const errno = koffi.errno();
  return errnoName(errno);
}

/** Where Linux gives one number two names, the one the rest of cnm (and iproute2's messages) uses. */
const PREFERRED_NAMES = new Set(['EOPNOTSUPP', 'EAGAIN', 'EDEADLK']);

/** Linux errnos the kernel layer meets that Node's os.constants.errno does not list. */
const LINUX_ONLY_NAMES: Record<number, string> = { 54: 'EXFULL' };

export function errnoName(errno: number): string | undefined {
  const names = Object.entries(osConstants.errno).filter(([, n]) => n === errno).map(([name]) => name);
  return names.find((name) => PREFERRED_NAMES.has(name)) ?? names[0] ?? LINUX_ONLY_NAMES[errno];
}

export function libcError(what: string, errno = lastErrno()): KernelError {
  return new KernelError(`${what}: ${errno ?? 'unknown error'}`, errno);
}

/** Open a namespace file read-only; a missing path is ENOENT, as the kernel layer promises. */
export function openNamespaceFile(path: string): number {
  try {
    return openSync(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new KernelError(`cannot open network namespace ${path}: ${(err as Error).message}`, code, { cause: err });
  }
}

export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    /* already closed */
  }
}

/** The main thread's own network namespace and the means to visit others synchronously. */
export class ThreadNamespace {
  /** The namespace the main thread was in at construction: where every visit returns to. */
  readonly homeFd: number;
  private visiting = false;

  constructor(private readonly libc: Libc) {
    this.homeFd = openSync('/proc/thread-self/ns/net', 'r');
  }

  /** Run `fn` with the thread inside the namespace open at `nsFd`. `fn` must be synchronous. */
  run<T>(nsFd: number, what: string, fn: () => T): T {
    this.enter(what);
    if (this.libc.setns(nsFd, CLONE_NEWNET) !== 0) {
      this.visiting = false;
      throw libcError(`${what}: setns`);
    }
    try {
      return fn();
    } finally {
      this.returnHome(what);
    }
  }

  /** Run `fn` inside a brand-new network namespace (created by unshare) and return home afterwards. */
  runInNew<T>(what: string, fn: () => T): T {
    this.enter(what);
    if (this.libc.unshare(CLONE_NEWNET) !== 0) {
      this.visiting = false;
      throw libcError(`${what}: unshare`);
    }
    try {
      return fn();
    } finally {
      this.returnHome(what);
    }
  }

  /**
   * Visits do not nest: the inner one would return the thread home while the outer one still expects to
   * be away, and the rest of the outer work would silently act on the wrong namespace.
   */
  private enter(what: string): void {
    if (this.visiting) throw new KernelError(`${what}: nested namespace visit (a bug in cnm)`, 'EBUSY');
    this.visiting = true;
  }

  bindMountCurrent(target: string, what: string): void {
    if (this.libc.mount('/proc/thread-self/ns/net', target, null, MS_BIND, null) !== 0) throw libcError(`${what}: mount`);
  }

  /** Lazily detach one mount at `target` (a pinned namespace never stays busy, but a detach cannot hang). */
  unmount(target: string, what: string): void {
    if (this.libc.umount2(target, MNT_DETACH) !== 0) throw libcError(`${what}: umount`);
  }

  close(): void {
    closeQuietly(this.homeFd);
  }

  private returnHome(what: string): void {
    if (this.libc.setns(this.homeFd, CLONE_NEWNET) !== 0) {
      // Every later socket would land in the wrong namespace: this must never go unnoticed.
      throw libcError(`${what}: cannot return the thread to its own network namespace`);
    }
    this.visiting = false;
  }
}
