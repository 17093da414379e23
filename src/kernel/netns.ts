/**
 * The one way cnm enters a network namespace, and the one libc binding for it.
 *
 * A socket, a mount or a /proc/sys file belongs to the network namespace its *thread* is in when it is
 * created or opened. `ThreadNamespace.withNetns` setns()es the main thread into a target, runs a
 * synchronous function and setns()es back before returning to the event loop — no other JavaScript can
 * run while the thread is away, and libuv's pool threads never move. The netlink kernel, the DNS
 * server's sockets and the libnftables runner all go through it.
 *
 * Failure policy (the same for every user):
 * - Failing to enter (a path that is not a network namespace, a closed fd, EPERM) throws a KernelError
 *   and the thread never left: nothing to undo.
 * - `fn` throwing: the thread returns home, then the error propagates.
 * - Visits do not nest: the inner one would return the thread home while the outer one still expects to
 *   be away. A nested visit throws (EBUSY) before moving the thread.
 * - Failing to RETURN home is the one unrecoverable case: every socket, mount and /proc/sys file this
 *   thread opens afterwards — API, DNS upstream sockets, firewall contexts — would silently land in a
 *   sandbox's namespace. Throwing cannot fix that (the caller's catch runs in the wrong namespace too), so
 *   the process is ended at once (`onHomeLost`, by default a line on stderr and process.abort()); the
 *   daemon's restart reconcile rebuilds everything from the store. Only tests replace `onHomeLost`.
 */
import { closeSync, fstatSync, openSync, statSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import koffi from 'koffi';
import { KernelError } from '../errors.js';

export const CLONE_NEWNET = 0x40000000;
const MS_BIND = 0x1000;
const MNT_DETACH = 2;
/** ioctl_ns(2): NS_GET_NSTYPE = _IO(0xb7, 0x3). */
const NS_GET_NSTYPE = 0xb703;

/** The libc calls that move a thread between namespaces or pin one. */
export interface NetnsLibc {
  setns(fd: number, nstype: number): number;
  unshare(flags: number): number;
  /** ioctl with no argument (NS_GET_NSTYPE). */
  ioctl(fd: number, request: number): number;
  mount(source: string, target: string, fstype: string | null, flags: number, data: null): number;
  umount2(target: string, flags: number): number;
  /**
   * SO_NETNS_COOKIE of the calling thread's network namespace (a socket is made and closed for it): a
   * number the kernel never gives another namespace, unlike the nsfs inode, which a namespace created
   * after this one died may get again. Negative when the kernel cannot tell (before Linux 5.14).
   */
  netnsCookie(): bigint;
}

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0x80000;
const SOL_SOCKET = 1;
const SO_NETNS_COOKIE = 71;

export function loadNetnsLibc(): NetnsLibc {
  const lib = koffi.load('libc.so.6');
  const ioctl = lib.func('int ioctl(int fd, unsigned long request, ...)');
  const socket = lib.func('int socket(int domain, int type, int protocol)');
  const getsockopt = lib.func('int getsockopt(int fd, int level, int optname, _Out_ void *optval, _Inout_ void *optlen)');
  const close = lib.func('int close(int fd)');
  return {
    netnsCookie: () => {
      const fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0) as number;
      if (fd < 0) return -1n;
      try {
        const value = Buffer.alloc(8);
        const length = Buffer.alloc(4);
        length.writeUInt32LE(8, 0);
        return (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, value, length) as number) === 0 ? value.readBigUInt64LE(0) : -1n;
      } finally {
        close(fd);
      }
    },
    setns: lib.func('int setns(int fd, int nstype)'),
    unshare: lib.func('int unshare(int flags)'),
    ioctl: (fd, request) => ioctl(fd, request) as number,
    mount: lib.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const void *data)'),
    umount2: lib.func('int umount2(const char *target, int flags)'),
  };
}

/** errno of the last failed libc call, by name ("ENOENT"), when the platform knows it. */
export function lastErrno(): string | undefined {
  return errnoName(koffi.errno());
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

/** What a thread that cannot return home does; see the failure policy above. */
export type HomeLostHandler = (error: KernelError) => never;

const abortProcess: HomeLostHandler = (error) => {
  process.stderr.write(`fatal: ${error.message}; ending the process (a restart reconciles from the store)\n`);
  process.abort();
};

export interface ThreadNamespaceOptions {
  /** Only for tests: replaces process.abort() when the thread cannot return home. */
  onHomeLost?: HomeLostHandler;
}

/** The main thread's own network namespace and the means to visit others synchronously. */
export class ThreadNamespace {
  /** The namespace the main thread was in at construction: where every visit returns to. */
  readonly homeFd: number;
  private visiting = false;
  private readonly onHomeLost: HomeLostHandler;

  constructor(
    private readonly libc: NetnsLibc = loadNetnsLibc(),
    options: ThreadNamespaceOptions = {},
  ) {
    this.homeFd = openSync('/proc/thread-self/ns/net', 'r');
    this.onHomeLost = options.onHomeLost ?? abortProcess;
  }

  /** Run `fn` (synchronous) with the thread inside the namespace open at `nsFd`, then return home. */
  withNetns<T>(nsFd: number, what: string, fn: () => T): T {
    return this.visit(what, 'setns', () => this.libc.setns(nsFd, CLONE_NEWNET), fn);
  }

  /** `withNetns` for a namespace given by path: opened for the visit only. */
  withNetnsAt<T>(path: string, what: string, fn: () => T): T {
    const fd = openNamespaceFile(path);
    try {
      return this.withNetns(fd, what, fn);
    } finally {
      closeQuietly(fd);
    }
  }

  /** Run `fn` inside a brand-new network namespace (created by unshare) and return home afterwards. */
  withNewNetns<T>(what: string, fn: () => T): T {
    return this.visit(what, 'unshare', () => this.libc.unshare(CLONE_NEWNET), fn);
  }

  /** Leave home with `leave` (a libc call returning 0 on success), run `fn`, and return home. */
  private visit<T>(what: string, call: string, leave: () => number, fn: () => T): T {
    this.enter(what);
    if (leave() !== 0) {
      const error = libcError(`${what}: ${call}`);
      this.visiting = false;
      throw error;
    }
    try {
      return fn();
    } finally {
      this.returnHome(what);
    }
  }

  /** Bind-mount the namespace the thread is in now (inside withNewNetns) onto `target`. */
  bindMountCurrent(target: string, what: string): void {
    if (this.libc.mount('/proc/thread-self/ns/net', target, null, MS_BIND, null) !== 0) throw libcError(`${what}: mount`);
  }

  /** Lazily detach one mount at `target` (a pinned namespace never stays busy, but a detach cannot hang). */
  unmount(target: string, what: string): void {
    if (this.libc.umount2(target, MNT_DETACH) !== 0) throw libcError(`${what}: umount`);
  }

  /**
   * Open `source` once, check it is a network namespace other than this thread's home, and bind-mount
   * that very open file onto `pin` (an existing empty file), so later use never re-resolves `source` (a
   * /proc/PID path may name another process by then): the pin holds the namespace object, not the PID.
   * Returns the namespace's identity ("dev:ino"). Refusals throw KernelError EINVAL and mount nothing;
   * `alsoOwn` names more identities to refuse (the namespace a test kernel treats as the daemon's own).
   */
  pinNetworkNamespace(source: string, pin: string, alsoOwn: string[] = []): string {
    const what = `cannot adopt ${source}`;
    const fd = openNamespaceFile(source);
    try {
      const type = this.libc.ioctl(fd, NS_GET_NSTYPE);
      if (type < 0) {
        const errno = lastErrno();
        // ENOTTY: the ioctl exists only on nsfs files, so anything else is not a namespace at all.
        throw new KernelError(`${what}: not a network namespace (${errno === 'ENOTTY' ? 'not a namespace file' : errno})`, 'EINVAL');
      }
      if (type !== CLONE_NEWNET) throw new KernelError(`${what}: not a network namespace`, 'EINVAL');
      const identity = fdIdentity(fd);
      // alsoOwn may hold full identities (with the cookie) or bare dev:ino ones.
      if (identity === fdIdentity(this.homeFd) || alsoOwn.some((o) => o === identity || o.startsWith(`${identity}:`))) {
        throw new KernelError(`${what}: it is the daemon's own network namespace`, 'EINVAL');
      }
      if (this.libc.mount(`/proc/self/fd/${fd}`, pin, null, MS_BIND, null) !== 0) throw libcError(`${what}: mount`);
      return this.identityOf(fd, what);
    } finally {
      closeQuietly(fd);
    }
  }

  /**
   * Identity of the namespace at `path` ("dev:ino:cookie"), equal for every path to one namespace and never
   * the same for two namespaces; undefined when `path` cannot be opened.
   */
  identityAt(path: string): string | undefined {
    let fd: number;
    try {
      fd = openNamespaceFile(path);
    } catch {
      return undefined;
    }
    try {
      return this.identityOf(fd, `identity of ${path}`);
    } finally {
      closeQuietly(fd);
    }
  }

  /** fdIdentity plus the namespace cookie (read inside it), when the kernel has one. */
  private identityOf(fd: number, what: string): string {
    const cookie = this.withNetns(fd, what, () => this.libc.netnsCookie());
    return cookie < 0n ? fdIdentity(fd) : `${fdIdentity(fd)}:${cookie}`;
  }

  close(): void {
    closeQuietly(this.homeFd);
  }

  private enter(what: string): void {
    if (this.visiting) throw new KernelError(`${what}: nested namespace visit (a bug in cnm)`, 'EBUSY');
    this.visiting = true;
  }

  private returnHome(what: string): void {
    if (this.libc.setns(this.homeFd, CLONE_NEWNET) !== 0) {
      this.onHomeLost(libcError(`${what}: cannot return the thread to the daemon's network namespace`));
    }
    this.visiting = false;
  }
}

/** Identity of a namespace file ("dev:ino" of the nsfs inode): equal for every path to one namespace. */
export function fdIdentity(fd: number): string {
  const st = fstatSync(fd);
  return `${st.dev}:${st.ino}`;
}

/** Identity of the namespace at `path`, or undefined when there is none to stat. */
export function pathIdentity(path: string): string | undefined {
  try {
    const st = statSync(path);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}
