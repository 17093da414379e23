/**
 * A versioned key-value store. SQLite (embedded default) and etcd (multi-host) implement it; both pass
 * test/conformance/store.ts. Domain objects never serialise themselves: the controller's repository
 * maps records to keys and JSON values.
 *
 * Revisions: every successful write returns a new revision (strictly increasing across the store);
 * an entry's `modRevision` is the revision of the write that last changed it.
 */

export interface KvEntry {
  key: string;
  value: string;
  /** Revision of the last write to this key. */
  modRevision: number;
}

/**
 * Compare-and-swap condition for put/delete and transactions:
 * - `undefined`: unconditional;
 * - `0`: the key must not exist;
 * - `n > 0`: the key must exist with modRevision n.
 */
export type ExpectedRevision = number | undefined;

export type TxnOp =
  | { op: 'put'; key: string; value: string; expectedRevision?: ExpectedRevision }
  | { op: 'delete'; key: string; expectedRevision?: ExpectedRevision }
  /** A pure condition: the transaction fails unless `key` is at `expectedRevision` (0 = absent). */
  | { op: 'check'; key: string; expectedRevision: number };

export type WatchEvent =
  | { type: 'put'; key: string; value: string; modRevision: number }
  | { type: 'delete'; key: string; modRevision: number };

export interface Store {
  get(key: string): Promise<KvEntry | undefined>;
  /** Every entry whose key starts with `prefix`, sorted by key. */
  list(prefix: string): Promise<KvEntry[]>;
  /** Returns the new revision. Throws StoreConflictError when `expectedRevision` does not hold. */
  put(key: string, value: string, expectedRevision?: ExpectedRevision): Promise<number>;
  /** Idempotent when unconditional. Throws StoreConflictError when `expectedRevision` does not hold. */
  delete(key: string, expectedRevision?: ExpectedRevision): Promise<void>;
  /**
   * All operations or none. Every condition is checked first; if any fails, nothing is written and
   * StoreConflictError (naming the first failing key) is thrown. Returns the revision of the write.
   */
  txn(ops: TxnOp[]): Promise<number>;
  /**
   * Calls `onEvent` for every change under `prefix` made after the call (by this process or, for a
   * shared store, by another host). Returns a function that stops watching.
   */
  watch(prefix: string, onEvent: (event: WatchEvent) => void): () => void;
  close(): Promise<void>;
}
