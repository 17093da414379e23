/**
 * Rules every Store implementation shares: key order, transaction shape, watch fan-out.
 */
import { InvalidParameterError } from '../errors.js';
import type { Logger } from '../util/log.js';
import type { ExpectedRevision, TxnOp, WatchEvent } from './types.js';

/**
 * Keys sort by Unicode code point, which is the byte order of their UTF-8 encoding: what SQLite's
 * BINARY collation and etcd use. (JavaScript's `<` compares UTF-16 units and would put U+1F600 before
 * U+FFFD.)
 */
export function compareKeys(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x < y ? -1 : 1;
    if (x > 0xffff) i++; // both are the same surrogate pair
  }
  return a.length - b.length;
}

/**
 * A transaction may write each key once (etcd rejects duplicates too); a 'check' may name a key that
 * is also written, because every condition is evaluated against the state before the transaction.
 */
export function assertValidTxn(ops: readonly TxnOp[]): void {
  const written = new Set<string>();
  for (const op of ops) {
    if (op.expectedRevision !== undefined && !(Number.isSafeInteger(op.expectedRevision) && op.expectedRevision >= 0)) {
      throw new InvalidParameterError(`invalid expected revision ${op.expectedRevision} for ${op.key}`);
    }
    if (op.op === 'check') continue;
    if (written.has(op.key)) throw new InvalidParameterError(`transaction writes ${op.key} more than once`);
    written.add(op.key);
  }
}

/** Does an entry at `modRevision` (undefined: absent) satisfy `expected`? */
export function conditionHolds(expected: ExpectedRevision, modRevision: number | undefined): boolean {
  if (expected === undefined) return true;
  if (expected === 0) return modRevision === undefined;
  return modRevision === expected;
}

interface Watcher {
  prefix: string;
  onEvent: (event: WatchEvent) => void;
  active: boolean;
}

/** In-process watch listeners, called after a write commits. */
export class WatcherRegistry {
  private readonly watchers = new Set<Watcher>();

  constructor(private readonly logger: Logger) {}

  add(prefix: string, onEvent: (event: WatchEvent) => void): () => void {
    const watcher: Watcher = { prefix, onEvent, active: true };
    this.watchers.add(watcher);
    return () => {
      watcher.active = false;
      this.watchers.delete(watcher);
    };
  }

  /**
   * Delivers `events` in order. A throwing listener is logged and does not fail the write that has
   * already committed, nor starve the other listeners.
   */
  emit(events: readonly WatchEvent[]): void {
    if (this.watchers.size === 0) return;
    for (const event of events) {
      for (const watcher of [...this.watchers]) {
        // `active` is re-checked: a listener may unsubscribe another (or itself) mid-delivery.
        if (!watcher.active || !event.key.startsWith(watcher.prefix)) continue;
        try {
          watcher.onEvent(event);
        } catch (err) {
          this.logger.error('store watch listener failed', { key: event.key, err });
        }
      }
    }
  }

  clear(): void {
    for (const watcher of this.watchers) watcher.active = false;
    this.watchers.clear();
  }
}
