/**
 * What the embedded server answers, socket-free: one query from one sandbox in, one response out.
 * Local answers are synchronous (a hash lookup and one Buffer); everything else becomes a forwarded
 * query. Decisions, after Docker's resolver (libnetwork/resolver.go):
 * - A / AAAA for a name on a shared network: all its addresses, TTL 600 (Docker's respTTL), authoritative;
 *   a name that exists without an address of that family: empty NOERROR, not forwarded.
 * - PTR for an address on a shared network: "<name>.<network>".
 * - Any other type for a name we own (MX, TXT, HTTPS, ANY, ...): empty NOERROR. Docker answers MX that
 *   way and forwards the rest, leaking container names upstream; we keep them all here.
 * - Single-label A / AAAA we do not own when ndots was set explicitly: empty NOERROR, so the stub resolver
 *   continues with its search domains (Docker's rule).
 * - A sandbox on internal networks only never forwards: SERVFAIL at once (what a Docker client ends up
 *   with, minus the wait).
 * - Opcodes other than QUERY: NOTIMP; malformed questions: FORMERR; EDNS version > 0: BADVERS;
 *   responses (QR=1) and runt packets: dropped.
 */
import type { Logger } from '../util/log.js';
import {
  CLASS_IN,
  encodeAnswer,
  encodeError,
  encodeName,
  encodeRejection,
  parseQuery,
  Rcode,
  RecordType,
  responseLimit,
  truncateForClient,
  type AnswerRecord,
  type ParsedQuery,
} from './codec.js';
import type { Forwarder, ForwardTarget, InFlightBudget } from './forwarder.js';
import type { DnsRegistry } from './registry.js';
import { addressFromReverseName } from './reverse-names.js';
import type { UpstreamPool } from './upstream.js';

/** Docker's TTL for its own names. */
export const LOCAL_TTL = 600;

/** The asking sandbox, as the server knows it from the socket the query arrived on. */
export interface QueryOrigin {
  readonly sandboxId: string;
  readonly budget: InFlightBudget;
  /** Sockets in the sandbox's namespace, for its own --dns servers (created on first use). */
  sandboxPool(): UpstreamPool;
  /**
   * The sandbox's namespace is the daemon's own (an adopted namespace): there the daemon's upstream at
   * our address would be ourselves, so it is skipped for this sandbox.
   */
  readonly inDaemonNamespace?: boolean;
}

export interface HandlerStats {
  local: number;
  forwarded: number;
  refusedForwarding: number;
  malformed: number;
  dropped: number;
}

export class QueryHandler {
  private readonly counters: HandlerStats = { local: 0, forwarded: 0, refusedForwarding: 0, malformed: 0, dropped: 0 };

  constructor(
    private readonly registry: DnsRegistry,
    private readonly forwarder: Forwarder,
    private readonly daemonPool: UpstreamPool,
    private readonly logger: Logger,
    private readonly ttl = LOCAL_TTL,
  ) {}

  /** undefined: send nothing. Never throws for any input bytes. */
  handle(origin: QueryOrigin, raw: Buffer, overTcp: boolean): Buffer | Promise<Buffer> | undefined {
    const parsed = parseQuery(raw);
    if (parsed === undefined) {
      this.counters.dropped++;
      return undefined;
    }
    if (!parsed.ok) {
      this.counters.malformed++;
      return encodeRejection(parsed.rejection);
    }
    const query = parsed.query;
    if (query.edns && query.edns.version !== 0) return encodeError(raw, query, Rcode.BADVERS);
    const limit = responseLimit(query, overTcp);
    if (query.qclass === CLASS_IN && query.plainName) {
      const local = this.answerLocally(origin.sandboxId, raw, query, limit);
      if (local) {
        this.counters.local++;
        return local;
      }
    }
    return this.forward(origin, raw, query, overTcp, limit);
  }

  stats(): HandlerStats {
    return { ...this.counters };
  }

  private answerLocally(sandboxId: string, raw: Buffer, query: ParsedQuery, limit: number): Buffer | undefined {
    const { type, name } = query;
    if (type === RecordType.A || type === RecordType.AAAA) {
      const found = this.registry.lookup(sandboxId, name, type === RecordType.A ? 'A' : 'AAAA');
      if (found.authoritative) {
        const records = found.records.map((r): AnswerRecord => ({ type, rdata: r.bytes }));
        return encodeAnswer(raw, query, { rcode: Rcode.NOERROR, authoritative: true, ttl: this.ttl, records }, limit);
      }
      if (!name.includes('.') && this.registry.ndotsSet(sandboxId)) return encodeError(raw, query, Rcode.NOERROR);
      return undefined;
    }
    if (type === RecordType.PTR) {
      const address = addressFromReverseName(name);
      const targets = address === undefined ? [] : this.registry.reverse(sandboxId, address);
      const records = targets.flatMap((t): AnswerRecord[] => {
        const rdata = encodeNameOrUndefined(t);
        return rdata ? [{ type, rdata }] : []; // a sandbox name too long for a DNS label has no PTR
      });
      if (records.length === 0) return undefined;
      return encodeAnswer(raw, query, { rcode: Rcode.NOERROR, authoritative: true, ttl: this.ttl, records }, limit);
    }
    if (this.registry.exists(sandboxId, name)) {
      return encodeAnswer(raw, query, { rcode: Rcode.NOERROR, authoritative: true, ttl: this.ttl, records: [] }, limit);
    }
    return undefined;
  }

  private forward(origin: QueryOrigin, raw: Buffer, query: ParsedQuery, overTcp: boolean, limit: number): Buffer | Promise<Buffer> {
    if (!this.registry.forwardingAllowed(origin.sandboxId)) {
      this.counters.refusedForwarding++;
      return encodeError(raw, query, Rcode.SERVFAIL);
    }
    const targets: ForwardTarget[] = [];
    for (const server of this.registry.upstreams(origin.sandboxId)) {
      if (origin.inDaemonNamespace && server.from === 'daemon' && this.registry.isOwnResolver(server)) continue;
      const pool = server.from === 'daemon' ? this.daemonPool : this.sandboxPoolOf(origin);
      if (pool) targets.push({ server, pool });
    }
    this.counters.forwarded++;
    return this.forwarder
      .forward({ raw, query, targets, overTcp, budget: origin.budget })
      .then((response) => (overTcp ? response : truncateForClient(response, raw, query, limit)));
  }

  private sandboxPoolOf(origin: QueryOrigin): UpstreamPool | undefined {
    try {
      return origin.sandboxPool();
    } catch (err) {
      this.logger.warn('dns: no sockets in the sandbox namespace for its upstreams', { sandbox: origin.sandboxId, err });
      return undefined;
    }
  }
}

function encodeNameOrUndefined(name: string): Buffer | undefined {
  try {
    return encodeName(name);
  } catch {
    return undefined;
  }
}
