/**
 * The embedded default Store: one SQLite file (better-sqlite3, synchronous, so every method runs to
 * completion without interleaving with other calls in this process).
 *
 * Durability: WAL with synchronous=NORMAL. A committed transaction survives the process being killed
 * (kill -9, crash) because it is in the WAL before COMMIT returns; only an OS crash or power loss may
 * roll back the last transactions, never corrupt the file. That is the failure we must survive: the
 * daemon dying between a kernel change and the next write is handled by reconciliation at start.
 *
 * Each write (put, delete, txn) is one IMMEDIATE transaction: the write lock is taken before the
 * conditions are read, so a second process on the same file cannot slip a write in between.
 * Watch sees writes made through this instance only.
 */
import Database from 'better-sqlite3';
import { StoreConflictError, SystemError, UnavailableError } from '../errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import { assertValidTxn, conditionHolds, WatcherRegistry } from './common.js';
import type { ExpectedRevision, KvEntry, Store, TxnOp, WatchEvent } from './types.js';

/** Bump with a new entry in MIGRATIONS when the schema changes; user_version records the applied one. */
const MIGRATIONS: readonly string[] = [
  // 1: keys with their last-write revision; the store-wide revision counter.
  `CREATE TABLE kv (
     key TEXT PRIMARY KEY,
     value TEXT NOT NULL,
     mod_revision INTEGER NOT NULL
   ) WITHOUT ROWID;
   CREATE TABLE meta (
     name TEXT PRIMARY KEY,
     value INTEGER NOT NULL
   ) WITHOUT ROWID;
   INSERT INTO meta (name, value) VALUES ('revision', 0);`,
];

export interface SqliteStoreOptions {
  logger?: Logger;
  /** How long a write waits for another process holding the lock (default 5 s). */
  busyTimeoutMs?: number;
}

interface Row {
  key: string;
  value: string;
  mod_revision: number;
}

interface TxnResult {
  revision: number;
  events: WatchEvent[];
}

export class SqliteStore implements Store {
  private readonly watchers: WatcherRegistry;
  private readonly statements;
  private readonly runTxn: (ops: readonly TxnOp[]) => TxnResult;

  private constructor(private readonly db: Database.Database, logger: Logger) {
    this.watchers = new WatcherRegistry(logger);
    this.statements = {
      get: db.prepare<[string], Row>('SELECT key, value, mod_revision FROM kv WHERE key = ?'),
      modRevision: db.prepare<[string], number>('SELECT mod_revision FROM kv WHERE key = ?').pluck(),
      scanFrom: db.prepare<[string], Row>('SELECT key, value, mod_revision FROM kv WHERE key >= ? ORDER BY key'),
      upsert: db.prepare<[string, string, number]>(
        `INSERT INTO kv (key, value, mod_revision) VALUES (?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, mod_revision = excluded.mod_revision`,
      ),
      remove: db.prepare<[string]>('DELETE FROM kv WHERE key = ?'),
      revision: db.prepare<[], number>("SELECT value FROM meta WHERE name = 'revision'").pluck(),
      setRevision: db.prepare<[number]>("UPDATE meta SET value = ? WHERE name = 'revision'"),
    };
    const txn = db.transaction((ops: readonly TxnOp[]) => this.applyInTransaction(ops));
    this.runTxn = (ops) => txn.immediate(ops);
  }

  /** Opens (creating and migrating when needed) the store at `path`, or ':memory:'. */
  static async open(path: string, options: SqliteStoreOptions = {}): Promise<SqliteStore> {
    let db: Database.Database | undefined;
    try {
      db = new Database(path);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`);
      migrate(db);
      return new SqliteStore(db, options.logger ?? silentLogger);
    } catch (err) {
      db?.close();
      if (err instanceof SystemError) throw err;
      throw new SystemError(`cannot open store ${path}: ${(err as Error).message}`, { cause: err });
    }
  }

  async get(key: string): Promise<KvEntry | undefined> {
    this.assertOpen();
    const row = this.statements.get.get(key);
    return row && toEntry(row);
  }

  async list(prefix: string): Promise<KvEntry[]> {
    this.assertOpen();
    // Keys with a given prefix are contiguous in byte order, starting at the prefix itself.
    const out: KvEntry[] = [];
    for (const row of this.statements.scanFrom.iterate(prefix)) {
      if (!row.key.startsWith(prefix)) break;
      out.push(toEntry(row));
    }
    return out;
  }

  async put(key: string, value: string, expectedRevision?: ExpectedRevision): Promise<number> {
    return this.write([{ op: 'put', key, value, expectedRevision }]);
  }

  async delete(key: string, expectedRevision?: ExpectedRevision): Promise<void> {
    await this.write([{ op: 'delete', key, expectedRevision }]);
  }

  async txn(ops: TxnOp[]): Promise<number> {
    return this.write(ops);
  }

  watch(prefix: string, onEvent: (event: WatchEvent) => void): () => void {
    this.assertOpen();
    return this.watchers.add(prefix, onEvent);
  }

  async close(): Promise<void> {
    this.watchers.clear();
    if (this.db.open) this.db.close();
  }

  private write(ops: readonly TxnOp[]): number {
    this.assertOpen();
    assertValidTxn(ops);
    const { revision, events } = this.runTxn(ops);
    // Only after COMMIT: a listener never sees a change that could still roll back.
    this.watchers.emit(events);
    return revision;
  }

  /** Runs inside the SQLite transaction; throwing rolls everything back. */
  private applyInTransaction(ops: readonly TxnOp[]): TxnResult {
    const existing = new Map<string, number | undefined>();
    for (const op of ops) {
      const modRevision = this.statements.modRevision.get(op.key);
      existing.set(op.key, modRevision);
      if (!conditionHolds(op.expectedRevision, modRevision)) throw new StoreConflictError(op.key);
    }
    const changes = ops.filter((op) => op.op === 'put' || (op.op === 'delete' && existing.get(op.key) !== undefined));
    const current = this.statements.revision.get()!;
    if (changes.length === 0) return { revision: current, events: [] };

    const revision = current + 1;
    this.statements.setRevision.run(revision);
    const events: WatchEvent[] = [];
    for (const op of changes) {
      if (op.op === 'put') {
        this.statements.upsert.run(op.key, op.value, revision);
        events.push({ type: 'put', key: op.key, value: op.value, modRevision: revision });
      } else {
        this.statements.remove.run(op.key);
        events.push({ type: 'delete', key: op.key, modRevision: revision });
      }
    }
    return { revision, events };
  }

  private assertOpen(): void {
    if (!this.db.open) throw new UnavailableError('store is closed');
  }
}

function toEntry(row: Row): KvEntry {
  return { key: row.key, value: row.value, modRevision: row.mod_revision };
}

/** Applies the migrations this file is newer than, all in one transaction. */
function migrate(db: Database.Database): void {
  const apply = db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > MIGRATIONS.length) {
      throw new SystemError(
        `store schema version ${version} is newer than this cnm supports (${MIGRATIONS.length}); upgrade cnm`,
      );
    }
    for (let next = version; next < MIGRATIONS.length; next++) db.exec(MIGRATIONS[next]!);
    db.pragma(`user_version = ${MIGRATIONS.length}`);
  });
  apply.immediate();
}
