/**
 * Forwarding a query we do not own to the sandbox's upstream servers (at most 3, in order).
 *
 * Bounded in every direction, so a resolver can never hang:
 * - time: one budget per query (default 4 s, Docker's per-server I/O timeout) shared by the servers; each
 *   attempt gets an equal share of what is left, so a dead first server cannot eat the whole budget and
 *   a server that fails fast (ICMP unreachable, no route) hands its share to the next one;
 * - concurrency: at most `maxInFlight` forwarded queries per sandbox (default 1024, Docker's figure)
 *   and `maxInFlightTotal` over all sandboxes (each holds a socket of its own); beyond that the answer
 *   is SERVFAIL at once (Docker waits up to 4 s for a slot, then REFUSED).
 * An upstream answering SERVFAIL or REFUSED is skipped like Docker does; when nobody gives a usable answer
 * the client gets SERVFAIL.
 */
import type { Logger } from '../util/log.js';
import { encodeError, isTruncated, Rcode, rcodeOf, type ParsedQuery } from './codec.js';
import type { UpstreamServer } from './resolv-conf.js';
import type { ExchangeResult, UpstreamPool } from './upstream.js';

export interface ForwarderOptions {
  /** Total time for one forwarded query, all upstreams included. */
  timeoutMs: number;
  /** Forwarded queries in flight per sandbox. */
  maxInFlight: number;
  /**
   * Forwarded queries in flight over all sandboxes. Each holds a socket (a descriptor) of its own, so
   * this keeps busy sandboxes together from running the daemon out of descriptors (RLIMIT_NOFILE).
   */
  maxInFlightTotal?: number;
}

export const DEFAULT_FORWARDER_OPTIONS: ForwarderOptions = { timeoutMs: 4000, maxInFlight: 1024, maxInFlightTotal: 8192 };

/** Counts one sandbox's forwarded queries in flight. */
export class InFlightBudget {
  private count = 0;

  constructor(readonly limit: number) {}

  tryAcquire(): boolean {
    if (this.count >= this.limit) return false;
    this.count++;
    return true;
  }

  release(): void {
    this.count--;
  }

  get inFlight(): number {
    return this.count;
  }
}

export interface ForwardTarget {
  server: UpstreamServer;
  /** The sockets of the namespace this server is queried from. */
  pool: UpstreamPool;
}

export interface ForwardRequest {
  /** The client's query, verbatim (its ID is restored in the answer). */
  raw: Buffer;
  query: ParsedQuery;
  targets: readonly ForwardTarget[];
  overTcp: boolean;
  budget: InFlightBudget;
}

export interface ForwarderStats {
  forwarded: number;
  answered: number;
  failed: number;
  overLimit: number;
}

export class Forwarder {
  private readonly counters: ForwarderStats = { forwarded: 0, answered: 0, failed: 0, overLimit: 0 };
  private lastOverLimitLog = 0;
  private readonly total: InFlightBudget;

  constructor(
    readonly options: ForwarderOptions,
    private readonly logger: Logger,
  ) {
    this.total = new InFlightBudget(options.maxInFlightTotal ?? DEFAULT_FORWARDER_OPTIONS.maxInFlightTotal!);
  }

  /** The upstream's answer (client ID restored, not yet cut to the client's size) or SERVFAIL. */
  async forward(request: ForwardRequest): Promise<Buffer> {
    const { raw, query, budget } = request;
    if (request.targets.length === 0) return encodeError(raw, query, Rcode.SERVFAIL);
    if (!budget.tryAcquire()) {
      this.counters.overLimit++;
      this.logOverLimit(budget.limit);
      return encodeError(raw, query, Rcode.SERVFAIL);
    }
    if (!this.total.tryAcquire()) {
      budget.release();
      this.counters.overLimit++;
      this.logOverLimit(this.total.limit);
      return encodeError(raw, query, Rcode.SERVFAIL);
    }
    this.counters.forwarded++;
    try {
      const answer = await this.tryTargets(request);
      if (answer) {
        this.counters.answered++;
        return answer;
      }
      this.counters.failed++;
      return encodeError(raw, query, Rcode.SERVFAIL);
    } finally {
      this.total.release();
      budget.release();
    }
  }

  stats(): ForwarderStats {
    return { ...this.counters };
  }

  private async tryTargets(request: ForwardRequest): Promise<Buffer | undefined> {
    const { raw, query, targets } = request;
    const deadline = Date.now() + this.options.timeoutMs;
    for (let i = 0; i < targets.length; i++) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      const { server, pool } = targets[i]!;
      const share = Math.max(1, Math.floor(remaining / (targets.length - i)));
      let result: ExchangeResult = request.overTcp
        ? await pool.tcp(server, raw, share)
        : await pool.udp(server, raw, query.questionEnd, share);
      if (result.ok && !request.overTcp && isTruncated(result.response)) {
        // The upstream's UDP answer did not fit: fetch it whole over TCP; the server cuts it down to the
        // client's size, and if it still does not fit the client retries over TCP itself.
        const whole = await pool.tcp(server, raw, Math.max(1, deadline - Date.now()));
        if (whole.ok) result = whole;
      }
      if (!result.ok) {
        this.logger.debug('dns upstream failed', { upstream: server.address, port: server.port, reason: result.reason });
        continue;
      }
      const rcode = rcodeOf(result.response);
      if (rcode === Rcode.SERVFAIL || rcode === Rcode.REFUSED) {
        this.logger.debug('dns upstream refused', { upstream: server.address, rcode });
        continue;
      }
      return result.response;
    }
    return undefined;
  }

  private logOverLimit(limit: number): void {
    const now = Date.now();
    if (now - this.lastOverLimitLog < 2000) return; // at most one line every 2 s, like Docker
    this.lastOverLimitLog = now;
    this.logger.warn('dns forwarding: too many queries in flight, answering SERVFAIL', { limit });
  }
}
