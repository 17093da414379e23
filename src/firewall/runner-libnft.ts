/**
 * NftRunner over libnftables (libnftables.so.1) loaded in-process with koffi: no process spawn per call.
 *
 * Namespaces: the context's netlink socket is opened inside nft_ctx_new (nftables ≥ 0.9.9 opens it
 * eagerly with NFT_CTX_DEFAULT and never reopens it) and a socket stays bound to the network namespace
 * its thread was in at creation. So for `netnsPath` the constructor setns()es this thread into the
 * target, creates the context and setns()es back, all synchronously: no other JS code can run on this
 * thread while it is in the foreign namespace. Scripts must not need interface-index lookups (`iif`,
 * `oif`, netdev hooks): nft resolves those through a fresh rtnetlink socket in the *current* namespace.
 * cnm's scripts only use `iifname`/`oifname`.
 *
 * Calls are synchronous (sub-millisecond for set elements; tens of ms for a 10k-element reconcile) and
 * run on the JS thread: libnftables keeps process-global caches, so running contexts on worker threads
 * concurrently would not be safe.
 *
 * Signals are blocked on this thread for the length of a call. libnftables waits for the kernel's answer
 * to a batch in select(), which no SA_RESTART restarts: a signal landing there (SIGCHLD of a process the
 * daemon spawned, a profiler's SIGPROF) failed the call with "Interrupted system call" after the kernel
 * had already committed the batch, so the daemon reported an error for a change that was made. Blocked
 * signals stay pending and are handled as soon as the call returns.
 */
import koffi, { type LibraryHandle } from 'koffi';
import { KernelError } from '../errors.js';
import { ThreadNamespace } from '../kernel/netns.js';
import { nftError } from './nft-error.js';
import type { NftRunner } from './types.js';

export interface LibNftRunnerOptions {
  /** Network namespace to program (a bind-mounted netns file); default: the caller's own. */
  netnsPath?: string;
  /** Shared object to load; default `libnftables.so.1` (Debian: libnftables1). */
  library?: string;
}

const NFT_CTX_DEFAULT = 0;

interface LibNftables {
  ctxNew: (flags: number) => unknown;
  ctxFree: (ctx: unknown) => void;
  bufferOutput: (ctx: unknown) => number;
  bufferError: (ctx: unknown) => number;
  runCmdFromBuffer: (ctx: unknown, script: string) => number;
  getOutputBuffer: (ctx: unknown) => string;
  getErrorBuffer: (ctx: unknown) => string;
  /** pthread_sigmask(how, set, oldset) with sigset_t as raw bytes. */
  sigmask: (how: number, set: Buffer | null, oldset: Buffer | null) => number;
}

const SIG_BLOCK = 0;
const SIG_SETMASK = 2;
/** sizeof(sigset_t) in glibc (1024 bits); the kernel reads the first 8 bytes, glibc keeps its own signals. */
const SIGSET_BYTES = 128;
const ALL_SIGNALS = Buffer.alloc(SIGSET_BYTES, 0xff);

export class LibNftRunner implements NftRunner {
  private readonly lib: LibNftables;
  private ctx: unknown;

  constructor(options: LibNftRunnerOptions = {}) {
    this.lib = loadLibNftables(options.library ?? 'libnftables.so.1');
    const create = () => this.lib.ctxNew(NFT_CTX_DEFAULT);
    const ctx = options.netnsPath === undefined ? create() : inNetworkNamespace(options.netnsPath, create);
    if (!ctx) throw new KernelError('nft_ctx_new failed');
    // Buffered output/error: nft writes to in-memory buffers we read after each command.
    if (this.lib.bufferOutput(ctx) !== 0 || this.lib.bufferError(ctx) !== 0) {
      this.lib.ctxFree(ctx);
      throw new KernelError('libnftables: cannot buffer output');
    }
    this.ctx = ctx;
  }

  async run(script: string): Promise<string> {
    const ctx = this.ctx;
    if (!ctx) throw new KernelError('nft runner is closed');
    const saved = Buffer.alloc(SIGSET_BYTES);
    if (this.lib.sigmask(SIG_BLOCK, ALL_SIGNALS, saved) !== 0) throw new KernelError('libnftables: cannot block signals');
    let rc: number;
    try {
      rc = this.lib.runCmdFromBuffer(ctx, script);
    } finally {
      this.lib.sigmask(SIG_SETMASK, saved, null);
    }
    // Reading both buffers also rewinds them for the next command.
    const output = this.lib.getOutputBuffer(ctx);
    const errors = this.lib.getErrorBuffer(ctx);
    if (rc !== 0) throw nftError(errors, 'libnftables');
    return output;
  }

  close(): void {
    if (this.ctx) this.lib.ctxFree(this.ctx);
    this.ctx = undefined;
  }
}

function loadLibNftables(path: string): LibNftables {
  const libc = koffi.load('libc.so.6');
  let lib: LibraryHandle;
  try {
    lib = koffi.load(path);
  } catch (err) {
    throw new KernelError(`cannot load ${path}: ${(err as Error).message}`, undefined, { cause: err });
  }
  return {
    ctxNew: lib.func('void *nft_ctx_new(uint32_t flags)'),
    ctxFree: lib.func('void nft_ctx_free(void *ctx)'),
    bufferOutput: lib.func('int nft_ctx_buffer_output(void *ctx)'),
    bufferError: lib.func('int nft_ctx_buffer_error(void *ctx)'),
    runCmdFromBuffer: lib.func('int nft_run_cmd_from_buffer(void *ctx, const char *buf)'),
    getOutputBuffer: lib.func('const char *nft_ctx_get_output_buffer(void *ctx)'),
    getErrorBuffer: lib.func('const char *nft_ctx_get_error_buffer(void *ctx)'),
    sigmask: libc.func('int pthread_sigmask(int how, const uint8_t *set, _Out_ uint8_t *oldset)'),
  };
}

/**
 * Run `fn` (synchronous) with this thread in the network namespace at `path`, then return to the
 * namespace the thread was in (kernel/netns.ts: the one primitive and its failure policy). Only objects
 * created inside `fn` (sockets) keep the foreign namespace.
 */
function inNetworkNamespace<T>(path: string, fn: () => T): T {
  const thread = new ThreadNamespace();
  try {
    return thread.withNetnsAt(path, `libnftables context in ${path}`, fn);
  } finally {
    thread.close();
  }
}
