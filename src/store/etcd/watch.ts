/**
 * A watch on one etcd key range that survives dropped connections and member restarts without
 * missing or repeating events.
 *
 * It keeps `next`, the first revision not yet delivered. Every (re)created etcd watcher starts at
 * `next`; an event below `next` (already delivered through an earlier stream) is dropped, and
 * delivering the events of a response moves `next` past them. All events of one revision arrive in
 * one response (cnm never asks for fragments), so a break never splits a revision. Progress
 * notifications move `next` forward on an idle range, so a resume does not ask for history that
 * compaction may already have removed.
 *
 * Compaction: when etcd answers that `next` is compacted, the history is gone; the watch relists the
 * range at the current revision (`relist`, supplied by the store) which reports the difference as
 * events, and continues after that revision.
 */
import type { ClientDuplexStream } from '@grpc/grpc-js';
import type { Logger } from '../../util/log.js';
import type { EtcdClient, RawEvent, RawWatchResponse } from './client.js';

export interface ResumableWatchOptions {
  client: EtcdClient;
  key: Buffer;
  rangeEnd: Buffer;
  /** The first revision to deliver. */
  startRevision: number;
  /** Called with the events of one response, in order, all at or after `next`. */
  deliver(events: RawEvent[]): void;
  /** History up to `compactRevision` is gone: resynchronise, and return the first revision to watch from. */
  relist(compactRevision: number): Promise<number>;
  logger: Logger;
  /** Reconnect pauses: first and longest (defaults 100 ms, 2 s). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

export class ResumableWatch {
  private next: number;
  private stream: ClientDuplexStream<object, RawWatchResponse> | undefined;
  private stopped = false;
  private backoffMs: number;
  private timer: NodeJS.Timeout | undefined;
  /** Increments with every stream, so late callbacks of an abandoned stream are ignored. */
  private generation = 0;
  private readonly minBackoffMs: number;
  private readonly maxBackoffMs: number;

  constructor(private readonly options: ResumableWatchOptions) {
    this.next = options.startRevision;
    this.minBackoffMs = options.minBackoffMs ?? 100;
    this.maxBackoffMs = options.maxBackoffMs ?? 2000;
    this.backoffMs = this.minBackoffMs;
    this.open();
  }

  /** The first revision not delivered yet. */
  get nextRevision(): number {
    return this.next;
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    this.abandon();
  }

  private open(): void {
    if (this.stopped) return;
    const generation = ++this.generation;
    let stream: ClientDuplexStream<object, RawWatchResponse>;
    try {
      stream = this.options.client.watchStream();
    } catch {
      return; // the client is closed
    }
    this.stream = stream;
    const current = () => generation === this.generation && !this.stopped;
    stream.on('data', (res: RawWatchResponse) => {
      if (current()) this.onResponse(res);
    });
    // Every failure of the stream, whatever its cause, ends in a resume from `next`.
    stream.on('error', (err: Error) => {
      if (current()) this.retry(`watch stream failed: ${err.message}`);
    });
    stream.on('end', () => {
      if (current()) this.retry('watch stream ended');
    });
    stream.write({
      create_request: {
        key: this.options.key,
        range_end: this.options.rangeEnd,
        start_revision: String(this.next),
        progress_notify: true,
      },
    });
  }

  private onResponse(res: RawWatchResponse): void {
    if (res.canceled) {
      const compacted = Number(res.compact_revision);
      if (compacted > 0) {
        this.resync(compacted);
      } else {
        this.retry(`watch canceled by etcd: ${res.cancel_reason || 'no reason given'}`);
      }
      return;
    }
    if (res.created) this.backoffMs = this.minBackoffMs;
    if (res.events.length > 0) {
      const fresh = res.events.filter((e) => Number(e.kv.mod_revision) >= this.next);
      if (fresh.length > 0) {
        this.next = Number(fresh[fresh.length - 1]!.kv.mod_revision) + 1;
        this.options.deliver(fresh);
      }
    } else if (!res.created) {
      // A progress notification: everything up to the header's revision has been sent.
      this.next = Math.max(this.next, Number(res.header.revision) + 1);
    }
  }

  private resync(compactRevision: number): void {
    this.abandon();
    this.options.logger.warn('etcd watch history compacted; relisting', { from: this.next, compactRevision });
    this.options
      .relist(compactRevision)
      .then((next) => {
        if (this.stopped) return;
        this.next = Math.max(this.next, next);
        this.open();
      })
      .catch((err: Error) => this.retry(`relist after compaction failed: ${err.message}`));
  }

  private retry(reason: string): void {
    if (this.stopped) return;
    this.abandon();
    this.options.logger.warn('etcd watch interrupted; resuming', { reason, from: this.next, inMs: this.backoffMs });
    this.options.client.failover();
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.maxBackoffMs, this.backoffMs * 2);
    clearTimeout(this.timer);
    // After a failed relist the new watcher meets the compaction again and relists once more.
    this.timer = setTimeout(() => this.open(), delay);
  }

  private abandon(): void {
    this.generation++;
    const stream = this.stream;
    this.stream = undefined;
    if (!stream) return;
    stream.removeAllListeners('data');
    stream.on('error', () => {}); // the cancel below surfaces as a CANCELLED error
    stream.cancel();
  }
}
