/**
 * An in-memory Store for unit tests: the same semantics as SqliteStore (it passes the same
 * conformance suite), nothing persisted.
 */
import { StoreConflictError, UnavailableError } from '../errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import { assertValidTxn, compareKeys, conditionHolds, WatcherRegistry } from './common.js';
import type { ExpectedRevision, KvEntry, Store, TxnOp, WatchEvent } from './types.js';

interface StoredValue {
  value: string;
  modRevision: number;
}

export class MemoryStore implements Store {
  private readonly entries = new Map<string, StoredValue>();
  private readonly watchers: WatcherRegistry;
  private revision = 0;
  private closed = false;

  constructor(logger: Logger = silentLogger) {
    this.watchers = new WatcherRegistry(logger);
  }

  async get(key: string): Promise<KvEntry | undefined> {
    this.assertOpen();
    const stored = this.entries.get(key);
    return stored && { key, ...stored };
  }

  async list(prefix: string): Promise<KvEntry[]> {
    this.assertOpen();
    const out: KvEntry[] = [];
    for (const [key, stored] of this.entries) {
      if (key.startsWith(prefix)) out.push({ key, ...stored });
    }
    return out.sort((a, b) => compareKeys(a.key, b.key));
  }

  async put(key: string, value: string, expectedRevision?: ExpectedRevision): Promise<number> {
    return this.apply([{ op: 'put', key, value, expectedRevision }]);
  }

  async delete(key: string, expectedRevision?: ExpectedRevision): Promise<void> {
    await this.apply([{ op: 'delete', key, expectedRevision }]);
  }

  async txn(ops: TxnOp[]): Promise<number> {
    return this.apply(ops);
  }

  watch(prefix: string, onEvent: (event: WatchEvent) => void): () => void {
    this.assertOpen();
    return this.watchers.add(prefix, onEvent);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watchers.clear();
  }

  /** Synchronous from check to write, so no other call can interleave: the whole txn is atomic. */
  private apply(ops: readonly TxnOp[]): number {
    this.assertOpen();
    assertValidTxn(ops);
    for (const op of ops) {
      if (!conditionHolds(op.expectedRevision, this.entries.get(op.key)?.modRevision)) {
        throw new StoreConflictError(op.key);
      }
    }
    const changes = ops.filter((op) => op.op === 'put' || (op.op === 'delete' && this.entries.has(op.key)));
    if (changes.length === 0) return this.revision;
    const revision = ++this.revision;
    const events: WatchEvent[] = [];
    for (const op of changes) {
      if (op.op === 'put') {
        this.entries.set(op.key, { value: op.value, modRevision: revision });
        events.push({ type: 'put', key: op.key, value: op.value, modRevision: revision });
      } else {
        this.entries.delete(op.key);
        events.push({ type: 'delete', key: op.key, modRevision: revision });
      }
    }
    this.watchers.emit(events);
    return revision;
  }

  private assertOpen(): void {
    if (this.closed) throw new UnavailableError('store is closed');
  }
}
