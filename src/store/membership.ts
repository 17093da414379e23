/**
 * Host membership in a cnm cluster, on the etcd store: each daemon keeps `hosts/<hostId>` (its
 * advertise address) under an etcd lease of `ttlSeconds` and refreshes the lease every third of it.
 * When a host dies (kill -9, power loss, partition) it stops refreshing, etcd expires the lease and
 * deletes the key, and every other host's watch reports the departure: at most `ttlSeconds` after
 * the last refresh.
 *
 * A lease that was lost while this host could not reach etcd (the refresh answers TTL 0), or a record
 * deleted by someone else, is replaced by a new lease and record: the host re-registers by itself.
 * close() revokes the lease: a clean stop is a departure at once.
 */
import type { ClientDuplexStream } from '@grpc/grpc-js';
import { InvalidParameterError } from '../errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import type { EtcdStore } from './etcd.js';
import type { RawHeader } from './etcd/client.js';
import type { Store } from './types.js';

export interface HostRecord {
  id: string;
  advertiseAddr: string;
  /** When this registration was made (ISO 8601): tells a re-registration from the first one. */
  registeredAt: string;
}

export type MembershipEvent = { type: 'join'; host: HostRecord } | { type: 'leave'; id: string };

/** The registered hosts as any reader of the store sees them (no registration of its own needed). */
export interface HostDirectory {
  /** Every registered host, sorted by id. */
  hosts(): Promise<HostRecord[]>;
  /** Reports hosts joining (or re-registering) and leaving (lease expired or revoked). */
  watch(onEvent: (event: MembershipEvent) => void): () => void;
  /** The store key of a host's registration: a transaction can check that the host is (still) absent. */
  key(id: string): string;
}

export function hostDirectory(store: Store): HostDirectory {
  return {
    key: (id) => `${HOSTS}${id}`,
    async hosts() {
      const entries = await store.list(HOSTS);
      return entries.flatMap((e) => parseRecord(e.value) ?? []);
    },
    watch(onEvent) {
      return store.watch(HOSTS, (event) => {
        if (event.type === 'delete') {
          onEvent({ type: 'leave', id: event.key.slice(HOSTS.length) });
          return;
        }
        const host = parseRecord(event.value);
        if (host) onEvent({ type: 'join', host });
      });
    },
  };
}

export interface MembershipOptions {
  store: EtcdStore;
  hostId: string;
  advertiseAddr: string;
  /** Lease time-to-live (default 30 s, at least 2). */
  ttlSeconds?: number;
  logger?: Logger;
}

const HOSTS = 'hosts/';
type KeepAliveStream = ClientDuplexStream<object, { header: RawHeader; ID: string; TTL: string }>;

export class Membership {
  private leaseId = '0';
  private stream: KeepAliveStream | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private registering: Promise<void> | undefined;
  private stopOwnWatch: (() => void) | undefined;
  readonly ttlSeconds: number;
  private readonly logger: Logger;

  private constructor(private readonly options: MembershipOptions) {
    this.ttlSeconds = options.ttlSeconds ?? 30;
    this.logger = options.logger ?? silentLogger;
  }

  /** Registers this host (UnavailableError when etcd cannot be reached) and keeps it registered. */
  static async join(options: MembershipOptions): Promise<Membership> {
    const ttl = options.ttlSeconds ?? 30;
    if (!(Number.isInteger(ttl) && ttl >= 2)) throw new InvalidParameterError(`invalid host TTL ${ttl}: whole seconds, at least 2`);
    if (!/^[A-Za-z0-9_.-]{1,128}$/.test(options.hostId)) throw new InvalidParameterError(`invalid host id ${JSON.stringify(options.hostId)}`);
    const membership = new Membership(options);
    await membership.register();
    // Someone deleting our record (an operator, a bug) must not make us vanish for good.
    membership.stopOwnWatch = options.store.watch(`${HOSTS}${options.hostId}`, (event) => {
      if (event.type === 'delete' && event.key === `${HOSTS}${options.hostId}`) membership.reregister('record deleted');
    });
    membership.scheduleRefresh();
    return membership;
  }

  get hostId(): string {
    return this.options.hostId;
  }

  /** Every registered host, this one included, sorted by id. */
  async hosts(): Promise<HostRecord[]> {
    return hostDirectory(this.options.store).hosts();
  }

  /** Reports hosts joining (or re-registering) and leaving (lease expired or revoked). */
  watch(onEvent: (event: MembershipEvent) => void): () => void {
    return hostDirectory(this.options.store).watch(onEvent);
  }

  /** Leaves the cluster: revokes the lease, which deletes the record at once. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.stopOwnWatch?.();
    this.dropStream();
    await this.registering?.catch(() => {});
    try {
      await this.options.store.etcd.leaseRevoke(this.leaseId);
    } catch (err) {
      this.logger.warn('cannot revoke the membership lease; it expires by itself', { err: (err as Error).message });
    }
  }

  private async register(): Promise<void> {
    const client = this.options.store.etcd;
    const grant = await client.leaseGrant(this.ttlSeconds);
    if (grant.error) throw new InvalidParameterError(`etcd refused a lease: ${grant.error}`);
    const record: HostRecord = { id: this.options.hostId, advertiseAddr: this.options.advertiseAddr, registeredAt: new Date().toISOString() };
    await client.put({ key: this.options.store.etcdKey(`${HOSTS}${record.id}`), value: Buffer.from(JSON.stringify(record)), lease: grant.ID });
    this.leaseId = grant.ID;
    this.logger.info('registered in the cluster', { hostId: record.id, advertiseAddr: record.advertiseAddr, ttl: this.ttlSeconds, lease: grant.ID });
  }

  private reregister(reason: string): void {
    if (this.closed || this.registering) return;
    this.logger.warn('membership lost; registering again', { reason });
    this.dropStream();
    this.registering = this.register()
      .catch((err: Error) => this.logger.warn('re-registration failed; retrying', { err: err.message }))
      .finally(() => {
        this.registering = undefined;
      });
  }

  /** Refreshes the lease every third of its TTL (etcd's own clients do the same). */
  private scheduleRefresh(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.refresh();
      this.scheduleRefresh();
    }, (this.ttlSeconds * 1000) / 3);
  }

  private refresh(): void {
    if (this.registering) return;
    if (this.leaseId === '0') return this.reregister('no lease');
    if (!this.stream) this.openStream();
    this.stream?.write({ ID: this.leaseId });
  }

  private openStream(): void {
    let stream: KeepAliveStream;
    try {
      stream = this.options.store.etcd.keepAliveStream();
    } catch {
      return; // the store is closed
    }
    this.stream = stream;
    stream.on('data', (res) => {
      // TTL 0: the lease expired while we could not refresh it (etcd unreachable, process frozen).
      if (res.ID === this.leaseId && Number(res.TTL) <= 0) this.reregister('lease expired');
    });
    const broken = (why: string) => {
      if (this.stream !== stream) return;
      this.logger.warn('membership keep-alive stream broke', { why });
      this.stream = undefined;
      this.options.store.etcd.failover();
    };
    stream.on('error', (err: Error) => broken(err.message));
    stream.on('end', () => broken('ended'));
  }

  private dropStream(): void {
    const stream = this.stream;
    this.stream = undefined;
    if (!stream) return;
    stream.on('error', () => {});
    stream.cancel();
  }
}

function parseRecord(text: string): HostRecord | undefined {
  try {
    const value = JSON.parse(text) as Partial<HostRecord>;
    if (typeof value.id === 'string' && typeof value.advertiseAddr === 'string' && typeof value.registeredAt === 'string') {
      return { id: value.id, advertiseAddr: value.advertiseAddr, registeredAt: value.registeredAt };
    }
  } catch {
    /* not a host record */
  }
  return undefined;
}
