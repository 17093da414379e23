/**
 * GET /events: Docker's newline-delimited JSON event stream. The broker keeps the last events so
 * `since` can replay them (Docker keeps 1000 as well) and ends open streams when the server closes.
 * A reader that stops reading is disconnected once its backlog passes a bound, so it cannot make the
 * daemon buffer without end (Docker drops such a subscriber's events; a cut stream at least tells the
 * client it missed some).
 */
import type { Controller, ControllerEvent } from '../controller/types.js';
import { InvalidParameterError } from '../errors.js';
import type { Logger } from '../util/log.js';
import { FilterArgs, nowNanos, parseUnixTimestamp } from './filters.js';
import type { RouteContext } from './router.js';

const HISTORY_SIZE = 1000;
const NANOS_PER_SECOND = 1_000_000_000n;
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface EventBrokerOptions {
  /** Bytes queued for one stream (in the process and its socket's send buffer) before it is cut. */
  maxBacklogBytes: number;
  logger?: Logger;
}

export class EventBroker {
  private readonly history: ControllerEvent[] = [];
  private readonly listeners = new Set<(event: ControllerEvent) => void>();
  private readonly streamClosers = new Set<() => void>();
  private readonly unsubscribe: () => void;

  constructor(
    controller: Controller,
    readonly options: EventBrokerOptions = { maxBacklogBytes: 256 * 1024 },
  ) {
    this.unsubscribe = controller.subscribe((event) => {
      this.history.push(event);
      // Trimmed in batches (a shift per event moves the whole array each time); the replay reads the last HISTORY_SIZE.
      if (this.history.length >= 2 * HISTORY_SIZE) this.history.splice(0, this.history.length - HISTORY_SIZE);
      for (const listener of this.listeners) listener(event);
    });
  }

  /** Events already seen with since ≤ time ≤ until. */
  replay(since: bigint, until: bigint | undefined): ControllerEvent[] {
    return this.history.slice(-HISTORY_SIZE).filter((e) => e.timeNano >= since && (until === undefined || e.timeNano <= until));
  }

  listen(listener: (event: ControllerEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  trackStream(close: () => void): () => void {
    this.streamClosers.add(close);
    return () => this.streamClosers.delete(close);
  }

  close(): void {
    this.unsubscribe();
    for (const close of [...this.streamClosers]) close();
  }
}

/** Sandboxes are Docker's containers; networks and services keep their own type. */
function dockerEventType(event: ControllerEvent): string {
  return event.type === 'sandbox' ? 'container' : event.type;
}

/** Docker's events.Message; sandbox events appear as container events, with the legacy fields API < 1.52 has. */
export function renderEvent(event: ControllerEvent): string {
  const type = dockerEventType(event);
  const legacy = type === 'container' ? { status: event.action, id: event.id, from: '' } : {};
  const body = JSON.stringify({
    ...legacy,
    Type: type,
    Action: event.action,
    Actor: { ID: event.id, Attributes: { ...event.attributes } },
    scope: 'local',
  });
  // Built by hand so timeNano (beyond 2^53) stays exact.
  return `${body.slice(0, -1)},"time":${event.timeNano / NANOS_PER_SECOND},"timeNano":${event.timeNano}}\n`;
}

const FUZZY_NAME_KEYS: Record<string, string> = {
  container: 'container',
  network: 'network',
  daemon: 'daemon',
  plugin: 'plugin',
  volume: 'volume',
  service: 'service',
  node: 'node',
  secret: 'secret',
  config: 'config',
};

/** moby daemon/events/filter.go's Include, for the event types cnm emits. */
export function eventFilter(args: FilterArgs): (event: ControllerEvent) => boolean {
  return (event) => {
    const type = dockerEventType(event);
    if (!args.exactMatch('event', event.action)) return false;
    if (!args.exactMatch('type', type)) return false;
    if (args.contains('scope') && !args.exactMatch('scope', 'local')) return false;
    for (const key of Object.keys(FUZZY_NAME_KEYS)) {
      // As in Docker, a name filter applies to every event: only objects of that kind can match it.
      if (!args.fuzzyMatch(key, event.id) && !args.fuzzyMatch(key, event.attributes.name ?? '')) return false;
    }
    if (args.contains('image') && !args.exactMatch('image', event.id)) return false;
    if (args.contains('label') && !args.matchKVList('label', event.attributes)) return false;
    return true;
  };
}

export function streamEvents(ctx: RouteContext, broker: EventBroker): void {
  const { res, query } = ctx;
  const since = parseTime(query, 'since');
  const until = parseTime(query, 'until');
  if (until !== undefined && since !== undefined && until < since) {
    throw new InvalidParameterError(`\`since\` time (${query.get('since')}) cannot be after \`until\` time (${query.get('until')})`);
  }
  const include = eventFilter(FilterArgs.fromJson(query.get('filters')));

  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.flushHeaders();
  // A write to a connection that broke is an 'error' here; 'close' follows and ends the stream.
  res.on('error', () => undefined);

  const cleanups: Array<() => void> = [];
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    for (const cleanup of cleanups) cleanup();
    if (!res.writableEnded) res.end();
  };
  const send = (event: ControllerEvent) => {
    if (finished || !include(event)) return;
    res.write(renderEvent(event));
    if (res.writableLength > broker.options.maxBacklogBytes) {
      broker.options.logger?.warn('events reader does not keep up: disconnected', { backlogBytes: res.writableLength });
      res.destroy();
      finish();
    }
  };

  // Replay and subscribe in one synchronous step so no event falls between them.
  if (since !== undefined) for (const event of broker.replay(since, until)) send(event);
  const now = nowNanos();
  if (finished || (until !== undefined && until <= now)) {
    finish();
    return;
  }
  cleanups.push(
    broker.listen((event) => {
      if (until === undefined || event.timeNano <= until) send(event);
    }),
  );
  cleanups.push(broker.trackStream(finish));
  const delayMs = until !== undefined ? Number((until - now) / 1_000_000n) + 1 : undefined;
  // Beyond setTimeout's range (~24 days) the stream simply stays open; later events are still filtered out.
  if (delayMs !== undefined && delayMs <= MAX_TIMER_MS) {
    const timer = setTimeout(finish, delayMs);
    cleanups.push(() => clearTimeout(timer));
  }
  // 'close' on the response fires when it ends and when the client goes away.
  res.on('close', finish);
}

function parseTime(query: URLSearchParams, name: string): bigint | undefined {
  try {
    return parseUnixTimestamp(query.get(name));
  } catch (err) {
    throw new InvalidParameterError(`invalid value for '${name}': ${(err as Error).message}`);
  }
}
