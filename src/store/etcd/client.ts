/**
 * A small etcd v3 client on @grpc/grpc-js and etcd's own protos (see proto.ts): one gRPC channel per
 * endpoint, calls go to the current endpoint and move to the next one when it is unavailable. Nothing
 * here knows cnm's Store semantics (etcd.ts does); this file only turns calls into typed promises and
 * gRPC failures into cnm errors:
 * - UNAVAILABLE on every endpoint → UnavailableError (503) naming the endpoints; a write past its
 *   deadline → UnavailableError saying its outcome is unknown;
 * - anything else → SystemError with etcd's message.
 *
 * Fail fast: a call never waits for a channel to become ready (no waitForReady); a refused connection
 * fails at once, so with every member down a call fails after one short round over the endpoints
 * rather than at its deadline.
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import { SystemError, UnavailableError } from '../../errors.js';
import { ETCD_PROTO } from './proto.js';

export interface EtcdTls {
  /** PEM files, as etcdctl's --cacert / --cert / --key. */
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

export interface EtcdClientOptions {
  /** `host:port` (TCP) or `unix:/absolute/path` entries; at least one. */
  endpoints: string[];
  tls?: EtcdTls;
  /** Deadline of one unary call (default 5 s). */
  callTimeoutMs?: number;
}

/** The raw shapes proto-loader produces (keepCase, int64 as decimal strings, bytes as Buffer). */
export interface RawHeader {
  revision: string;
  member_id: string;
}
export interface RawKeyValue {
  key: Buffer;
  value: Buffer;
  create_revision: string;
  mod_revision: string;
  lease: string;
}
export interface RawEvent {
  type: number;
  kv: RawKeyValue;
}
export interface RawWatchResponse {
  header: RawHeader;
  watch_id: string;
  created: boolean;
  canceled: boolean;
  compact_revision: string;
  cancel_reason: string;
  events: RawEvent[];
}

type Unary = (request: object, options: grpc.CallOptions, callback: (err: grpc.ServiceError | null, res: any) => void) => grpc.ClientUnaryCall;

interface ServiceClient extends grpc.Client {
  [method: string]: any;
}

interface Channel {
  endpoint: string;
  kv: ServiceClient;
  watch: ServiceClient;
  lease: ServiceClient;
  maintenance: ServiceClient;
}

/** A read may be tried again on any failure to get an answer. */
const RETRYABLE_READ = new Set([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED]);
/**
 * A write only when the endpoint could not be reached: after a deadline its proposal may still be
 * committed later (a follower forwards it to a leader that was frozen), and a retry would then be
 * applied before the original, overwriting a newer value with an older one.
 */
const RETRYABLE_WRITE = new Set([grpc.status.UNAVAILABLE]);
const READS = new Set(['Range', 'Status']);
/**
 * Before each round over the endpoints: a member that is restarting, or a cluster electing a new
 * leader ("no leader" is UNAVAILABLE; an election takes about one election timeout, 1 s by default),
 * gets ≈1.3 s. With every member down each attempt is refused at once, so a call fails after that.
 */
const ROUND_PAUSES_MS = [0, 300, 1000];

export class EtcdClient {
  private readonly channels: Channel[];
  private current = 0;
  private closed = false;
  private readonly callTimeoutMs: number;

  constructor(private readonly options: EtcdClientOptions) {
    if (options.endpoints.length === 0) throw new SystemError('etcd: no endpoints');
    const pkg = grpc.loadPackageDefinition(loadDefinition()) as any;
    const api = pkg.etcdserverpb;
    const credentials = channelCredentials(options.tls);
    const channelOptions: grpc.ChannelOptions = {
      'grpc.max_receive_message_length': -1,
      'grpc.max_send_message_length': -1,
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
      'grpc.min_reconnect_backoff_ms': 100,
      // A member that stops answering (frozen, partitioned) is noticed by pings, not only by a reset.
      'grpc.keepalive_time_ms': 5000,
      'grpc.keepalive_timeout_ms': 3000,
      'grpc.keepalive_permit_without_calls': 1,
    };
    this.channels = options.endpoints.map((endpoint) => {
      // Over a unix socket grpc-js checks the server certificate against "localhost".
      const target = endpoint.startsWith('unix:') ? endpoint : `dns:${endpoint}`;
      const kv = new api.KV(target, credentials, channelOptions) as ServiceClient;
      // The other services share the KV client's channel (one connection per endpoint).
      const shared = { channelOverride: kv.getChannel() };
      return {
        endpoint,
        kv,
        watch: new api.Watch(target, credentials, shared) as ServiceClient,
        lease: new api.Lease(target, credentials, shared) as ServiceClient,
        maintenance: new api.Maintenance(target, credentials, shared) as ServiceClient,
      };
    });
    this.callTimeoutMs = options.callTimeoutMs ?? 5000;
  }

  get endpoints(): readonly string[] {
    return this.options.endpoints;
  }

  range(request: object): Promise<{ header: RawHeader; kvs: RawKeyValue[]; more: boolean }> {
    return this.unary('kv', 'Range', request);
  }
  put(request: object): Promise<{ header: RawHeader }> {
    return this.unary('kv', 'Put', request);
  }
  txn(request: object): Promise<{ header: RawHeader; succeeded: boolean; responses: any[] }> {
    return this.unary('kv', 'Txn', request);
  }
  leaseGrant(ttlSeconds: number): Promise<{ header: RawHeader; ID: string; TTL: string; error: string }> {
    return this.unary('lease', 'LeaseGrant', { TTL: String(ttlSeconds) });
  }
  leaseRevoke(id: string): Promise<{ header: RawHeader }> {
    return this.unary('lease', 'LeaseRevoke', { ID: id });
  }
  status(): Promise<{ header: RawHeader; version: string }> {
    return this.unary('maintenance', 'Status', {});
  }

  /** A bidirectional Watch stream on the current endpoint. */
  watchStream(): grpc.ClientDuplexStream<object, RawWatchResponse> {
    this.assertOpen();
    return this.channels[this.current]!.watch.Watch();
  }

  /** A bidirectional LeaseKeepAlive stream on the current endpoint. */
  keepAliveStream(): grpc.ClientDuplexStream<object, { header: RawHeader; ID: string; TTL: string }> {
    this.assertOpen();
    return this.channels[this.current]!.lease.LeaseKeepAlive();
  }

  /** Called by stream users after their stream failed: the next stream goes to another endpoint. */
  failover(): void {
    this.current = (this.current + 1) % this.channels.length;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const channel of this.channels) channel.kv.close();
  }

  /**
   * One unary call, tried on each endpoint in turn (starting at the current one) while they answer
   * UNAVAILABLE, in up to three rounds (ROUND_PAUSES_MS).
   * A read that timed out is tried on the next endpoint too; a write that timed out is not (see
   * RETRYABLE_WRITE) and fails with UnavailableError saying its outcome is unknown.
   */
  private async unary<T>(service: 'kv' | 'lease' | 'maintenance', method: string, request: object): Promise<T> {
    const attempts = this.channels.length * ROUND_PAUSES_MS.length;
    let lastError: grpc.ServiceError | undefined;
    for (let attempt = 0; attempt < attempts; attempt++) {
      this.assertOpen();
      const pause = attempt % this.channels.length === 0 ? ROUND_PAUSES_MS[attempt / this.channels.length]! : 0;
      if (pause > 0) await new Promise((r) => setTimeout(r, pause));
      const channel = this.channels[this.current]!;
      try {
        return await new Promise<T>((resolve, reject) => {
          const call = channel[service][method] as Unary;
          call.call(channel[service], request, { deadline: Date.now() + this.callTimeoutMs }, (err, res) =>
            err ? reject(err) : resolve(res as T),
          );
        });
      } catch (err) {
        const e = err as grpc.ServiceError;
        if (e.code === grpc.status.DEADLINE_EXCEEDED && !READS.has(method)) {
          throw new UnavailableError(`cluster store did not answer in time (${channel.endpoint}); the ${method} may or may not have been applied`);
        }
        if (!(READS.has(method) ? RETRYABLE_READ : RETRYABLE_WRITE).has(e.code)) {
          throw new SystemError(`etcd ${method}: ${e.details || e.message}`, { cause: err });
        }
        lastError = e;
        this.failover();
      }
    }
    throw new UnavailableError(
      `cluster store unreachable: no etcd endpoint answered (${this.options.endpoints.join(', ')}): ${lastError?.details ?? 'unavailable'}`,
    );
  }

  private assertOpen(): void {
    if (this.closed) throw new UnavailableError('cluster store is closed');
  }
}

function loadDefinition(): protoLoader.PackageDefinition {
  const root = protobuf.parse(ETCD_PROTO, { keepCase: true }).root;
  return protoLoader.fromJSON(root.toJSON(), { keepCase: true, longs: String, enums: Number, defaults: true, oneofs: true });
}

function channelCredentials(tls: EtcdTls | undefined): grpc.ChannelCredentials {
  if (!tls || (!tls.caFile && !tls.certFile && !tls.keyFile)) return grpc.credentials.createInsecure();
  if (Boolean(tls.certFile) !== Boolean(tls.keyFile)) throw new SystemError('etcd TLS: a client certificate needs its key and the other way round');
  const read = (path: string | undefined) => {
    if (!path) return null;
    try {
      return readFileSync(path);
    } catch (err) {
      throw new SystemError(`etcd TLS: cannot read ${path}: ${(err as Error).message}`, { cause: err });
    }
  };
  return grpc.credentials.createSsl(read(tls.caFile), read(tls.keyFile), read(tls.certFile));
}
