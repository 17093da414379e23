/**
 * The multi-host Store on etcd v3 (gRPC, see etcd/client.ts). Every key lives under a per-cluster
 * prefix (default `/cnm/default/`), so several cnm clusters (and the tests) can share one etcd.
 *
 * - Revisions are etcd's: a put's revision is the response header's, an entry's `modRevision` is
 *   etcd's mod_revision. They are global to the etcd cluster, so they grow by other clusters' writes
 *   too (the Store contract only promises that they increase).
 * - Conditions map to etcd compares: `0` (must be absent) is `create_revision == 0`, `n` is
 *   `mod_revision == n`. A transaction is one etcd Txn: all compares, then every write. When a
 *   compare fails, the Txn's failure branch reads every compared key at the same revision, so the
 *   error names the first failing key as SQLite does.
 * - watch() starts at the revision after the last one this store has seen (from any response), so
 *   it sees every change made after the call, and resumes across failures (etcd/watch.ts).
 */
import { InvalidParameterError, StoreConflictError, UnavailableError } from '../errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import { assertValidTxn, conditionHolds } from './common.js';
import { EtcdClient, type EtcdTls, type RawEvent, type RawHeader, type RawKeyValue } from './etcd/client.js';
import { ResumableWatch } from './etcd/watch.js';
import type { ExpectedRevision, KvEntry, Store, TxnOp, WatchEvent } from './types.js';

export interface EtcdStoreOptions {
  endpoints: string[];
  /** Every key is stored under this prefix (default `/cnm/default/`). */
  prefix?: string;
  tls?: EtcdTls;
  /** Deadline of one call to etcd (default 5 s). */
  callTimeoutMs?: number;
  logger?: Logger;
}

export class EtcdStore implements Store {
  private readonly prefix: Buffer;
  private readonly watches = new Set<ResumableWatch>();
  private closed = false;
  /** The highest revision any response has shown: watches start after it. */
  private seenRevision = 0;

  private constructor(
    private readonly client: EtcdClient,
    prefix: string,
    private readonly logger: Logger,
  ) {
    this.prefix = Buffer.from(prefix, 'utf8');
  }

  /** Connects and reads the current revision; UnavailableError when no endpoint answers. */
  static async open(options: EtcdStoreOptions): Promise<EtcdStore> {
    const client = new EtcdClient({ endpoints: options.endpoints, tls: options.tls, callTimeoutMs: options.callTimeoutMs });
    const store = new EtcdStore(client, options.prefix ?? '/cnm/default/', options.logger ?? silentLogger);
    try {
      store.saw((await client.status()).header);
    } catch (err) {
      client.close();
      throw err;
    }
    return store;
  }

  /** The etcd client (membership shares its connections). */
  get etcd(): EtcdClient {
    return this.client;
  }

  /** Maps a Store key to its etcd key under the cluster prefix. */
  etcdKey(key: string): Buffer {
    return Buffer.concat([this.prefix, Buffer.from(key, 'utf8')]);
  }

  async get(key: string): Promise<KvEntry | undefined> {
    this.assertOpen();
    const res = await this.client.range({ key: this.etcdKey(key) });
    this.saw(res.header);
    return res.kvs[0] && this.toEntry(res.kvs[0]);
  }

  async list(prefix: string): Promise<KvEntry[]> {
    this.assertOpen();
    const key = this.etcdKey(prefix);
    const res = await this.client.range({ key, range_end: prefixEnd(key) });
    this.saw(res.header);
    return res.kvs.map((kv) => this.toEntry(kv));
  }

  async put(key: string, value: string, expectedRevision?: ExpectedRevision): Promise<number> {
    return this.txn([{ op: 'put', key, value, expectedRevision }]);
  }

  async delete(key: string, expectedRevision?: ExpectedRevision): Promise<void> {
    await this.txn([{ op: 'delete', key, expectedRevision }]);
  }

  async txn(ops: TxnOp[]): Promise<number> {
    this.assertOpen();
    assertValidTxn(ops);
    const conditions = ops.filter((op) => op.expectedRevision !== undefined);
    const res = await this.client.txn({
      compare: conditions.map((op) =>
        op.expectedRevision === 0
          ? { key: this.etcdKey(op.key), target: CREATE, result: EQUAL, create_revision: '0' }
          : { key: this.etcdKey(op.key), target: MOD, result: EQUAL, mod_revision: String(op.expectedRevision) },
      ),
      success: ops.flatMap((op): object[] =>
        op.op === 'put'
          ? [{ request_put: { key: this.etcdKey(op.key), value: Buffer.from(op.value, 'utf8') } }]
          : op.op === 'delete'
            ? [{ request_delete_range: { key: this.etcdKey(op.key) } }]
            : [],
      ),
      failure: conditions.map((op) => ({ request_range: { key: this.etcdKey(op.key), keys_only: true } })),
    });
    this.saw(res.header);
    if (!res.succeeded) {
      const failing = conditions.find((op, i) => {
        const kv: RawKeyValue | undefined = res.responses[i]?.response_range?.kvs?.[0];
        return !conditionHolds(op.expectedRevision, kv ? Number(kv.mod_revision) : undefined);
      });
      // Every condition held when read back: the state changed between the compare and the read,
      // which one Txn excludes; report the first conditional key rather than invent success.
      throw new StoreConflictError((failing ?? conditions[0]!).key);
    }
    return Number(res.header.revision);
  }

  watch(prefix: string, onEvent: (event: WatchEvent) => void): () => void {
    this.assertOpen();
    const key = this.etcdKey(prefix);
    const rangeEnd = prefixEnd(key);
    // Keys under the prefix as this watch knows them: what a relist after compaction compares with.
    const known = new Set<string>();
    const startRevision = this.seenRevision + 1;
    const deliver = (raw: RawEvent[]) => {
      const events = raw.map((e) => this.toEvent(e));
      for (const event of events) {
        if (event.type === 'put') known.add(event.key);
        else known.delete(event.key);
        // Re-checked per event: the listener may stop its own watch mid-delivery.
        if (!this.watches.has(watch)) return;
        try {
          onEvent(event);
        } catch (err) {
          this.logger.error('store watch listener failed', { key: event.key, err });
        }
      }
    };
    // The state the watch starts from, read at the revision before its first event.
    const initial = this.client
      .range({ key, range_end: rangeEnd, keys_only: true, revision: String(startRevision - 1) })
      .then((res) => {
        for (const kv of res.kvs) known.add(this.storeKey(kv.key));
      })
      .catch((err: Error) => this.logger.warn('etcd watch: cannot read the starting key set', { prefix, err: err.message }));
    const relist = async (): Promise<number> => {
      await initial;
      const res = await this.client.range({ key, range_end: rangeEnd });
      const revision = Number(res.header.revision);
      const present = new Map(res.kvs.map((kv) => [this.storeKey(kv.key), kv]));
      const from = watch.nextRevision;
      const puts = res.kvs.filter((kv) => Number(kv.mod_revision) >= from);
      puts.sort((a, b) => Number(a.mod_revision) - Number(b.mod_revision));
      const gone = [...known].filter((k) => !present.has(k)).sort();
      deliver([
        ...puts.map((kv) => ({ type: 0, kv })),
        ...gone.map((k) => ({ type: 1, kv: { key: this.etcdKey(k), value: Buffer.alloc(0), mod_revision: String(revision), create_revision: '0', lease: '0' } })),
      ]);
      return revision + 1;
    };
    const watch: ResumableWatch = new ResumableWatch({ client: this.client, key, rangeEnd, startRevision, deliver, relist, logger: this.logger });
    this.watches.add(watch);
    return () => {
      this.watches.delete(watch);
      watch.stop();
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const watch of this.watches) watch.stop();
    this.watches.clear();
    this.client.close();
  }

  private saw(header: RawHeader | undefined): void {
    if (header) this.seenRevision = Math.max(this.seenRevision, Number(header.revision));
  }

  private storeKey(etcdKey: Buffer): string {
    return etcdKey.subarray(this.prefix.length).toString('utf8');
  }

  private toEntry(kv: RawKeyValue): KvEntry {
    return { key: this.storeKey(kv.key), value: kv.value.toString('utf8'), modRevision: Number(kv.mod_revision) };
  }

  private toEvent(e: RawEvent): WatchEvent {
    const key = this.storeKey(e.kv.key);
    const modRevision = Number(e.kv.mod_revision);
    this.seenRevision = Math.max(this.seenRevision, modRevision);
    return e.type === 1 ? { type: 'delete', key, modRevision } : { type: 'put', key, value: e.kv.value.toString('utf8'), modRevision };
  }

  private assertOpen(): void {
    if (this.closed) throw new UnavailableError('cluster store is closed');
  }
}

/** etcd's Compare enums (proto.ts). */
const EQUAL = 0;
const CREATE = 1;
const MOD = 2;

/** The end of the range of keys starting with `key`: its last byte below 0xff incremented. */
export function prefixEnd(key: Buffer): Buffer {
  for (let i = key.length - 1; i >= 0; i--) {
    if (key[i]! < 0xff) {
      const end = Buffer.from(key.subarray(0, i + 1));
      end[i]! += 1;
      return end;
    }
  }
  if (key.length === 0) throw new InvalidParameterError('etcd: empty key prefix');
  return Buffer.from([0]); // every key from `key` on
}
