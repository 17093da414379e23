/**
 * The firewall watchdog: cnm's rules come back within a fraction of a second of someone flushing or
 * editing them (`nft flush ruleset`, a firewall reload, `nft delete element inet cnm ...`).
 *
 * nftables events (see nft-events.ts) say when another process changed cnm's tables; a burst of them is
 * debounced into one check (check-and-restore is the controller's, atomic, under its mutex). Lost events
 * (ENOBUFS) trigger a check too, and a slow periodic check backs everything up.
 */
import type { NetlinkMessage } from '../kernel/netlink/codec.js';
import type { KernelError } from '../errors.js';
import { NftChangeFilter, type ForeignChange } from './nft-events.js';

export interface DebounceOptions {
  /** Run once this long after the last trigger of a burst... */
  quietMs: number;
  /** ...but never later than this after its first trigger. */
  maxDelayMs: number;
}

export const DEFAULT_DEBOUNCE: DebounceOptions = { quietMs: 20, maxDelayMs: 100 };

/**
 * Turns bursts of triggers into single runs of `task`. Never runs `task` twice at once: a trigger that
 * arrives while it runs schedules one more run after it.
 */
export class Debouncer {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private firstAt: number | undefined;
  private running = false;
  private again = false;
  private stopped = false;

  constructor(
    private readonly task: () => Promise<void>,
    private readonly options: DebounceOptions = DEFAULT_DEBOUNCE,
    private readonly now: () => number = Date.now,
  ) {}

  trigger(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    const now = this.now();
    this.firstAt ??= now;
    const delay = Math.max(0, Math.min(this.options.quietMs, this.firstAt + this.options.maxDelayMs - now));
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.run(), delay);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async run(): Promise<void> {
    this.timer = undefined;
    this.firstAt = undefined;
    this.running = true;
    try {
      await this.task();
    } finally {
      this.running = false;
      if (this.again) {
        this.again = false;
        this.trigger();
      }
    }
  }
}

/** What the watchdog needs from the nftables event monitor (kernel/netlink/nft-monitor.ts). */
export interface EventSource {
  close(): Promise<void>;
}

export interface WatchdogLogger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface WatchdogOptions {
  /** Check cnm's rules against the desired state and restore them when they differ (true: restored). */
  check(): Promise<boolean>;
  /** Period of the backstop check in ms (0: none). */
  backstopMs: number;
  /**
   * Open the event source with these handlers (in the firewall's namespace); undefined or a throw means
   * no events: the backstop alone is left.
   */
  openEvents?(handlers: { onMessages(m: NetlinkMessage[]): void; onLoss(e: KernelError, fatal: boolean): void }): EventSource;
  /** Recognises the daemon's own transactions; default: the kernel reports this process's PID. */
  isOwnProcess?(pid: number): boolean;
  logger: WatchdogLogger;
  debounce?: DebounceOptions;
}

export class FirewallWatchdog {
  private readonly debouncer: Debouncer;
  private readonly filter: NftChangeFilter;
  private readonly backstop: ReturnType<typeof setInterval> | undefined;
  private events: EventSource | undefined;
  /** When the first foreign change not yet checked was seen. */
  private changedAt: number | undefined;

  constructor(private readonly options: WatchdogOptions) {
    const { logger } = options;
    this.filter = new NftChangeFilter(options.isOwnProcess ?? ((pid) => pid === process.pid));
    this.debouncer = new Debouncer(async () => {
      const changedAt = this.changedAt;
      this.changedAt = undefined;
      try {
        const restored = await options.check();
        if (restored === true && changedAt !== undefined) {
          logger.info('cnm firewall restored after a change by another process', { ms: Date.now() - changedAt });
        }
      } catch (err) {
        logger.error('firewall check failed', { error: (err as Error).message });
      }
    }, options.debounce);
    if (options.openEvents) {
      try {
        this.events = options.openEvents({
          onMessages: (messages) => this.onMessages(messages),
          onLoss: (error, fatal) => {
            this.filter.reset();
            if (fatal) logger.error('nftables events stopped; only the periodic check is left', { error: error.message });
            else logger.warn('nftables events lost; checking the firewall', { error: error.message });
            this.debouncer.trigger();
          },
        });
      } catch (err) {
        logger.warn('cannot subscribe to nftables events; only the periodic check is left', { error: (err as Error).message });
      }
    }
    if (options.backstopMs > 0) {
      this.backstop = setInterval(() => this.debouncer.trigger(), options.backstopMs);
      this.backstop.unref();
    }
  }

  /** True when nftables events are being followed. */
  get followingEvents(): boolean {
    return this.events !== undefined;
  }

  async close(): Promise<void> {
    if (this.backstop) clearInterval(this.backstop);
    this.debouncer.stop();
    const events = this.events;
    this.events = undefined;
    await events?.close();
  }

  private onMessages(messages: NetlinkMessage[]): void {
    const changes = this.filter.feed(messages);
    if (changes.length === 0) return;
    this.changedAt ??= Date.now();
    this.options.logger.info('cnm firewall changed by another process; checking it', describe(changes));
    this.debouncer.trigger();
  }
}

function describe(changes: ForeignChange[]): Record<string, unknown> {
  const last = changes.at(-1)!;
  return { transactions: changes.length, pid: last.pid, process: last.process, generation: last.generation };
}
