/**
 * Sandboxes that follow another runtime's namespace (the CNI plugin's) are released when that namespace
 * dies without anyone telling cnm (a killed container, a runtime that never calls DEL). The host end of a
 * veth pair disappears when its peer's namespace dies: every RTM_DELLINK in the daemon's namespace starts
 * a check (coalesced: one runs at a time, one more is queued at most); a periodic check is the backstop
 * for lost events and link-less sandboxes.
 */
import { errorMessage } from '../errors.js';
import type { Logger } from '../util/log.js';

export interface NamespaceWatchDeps {
  release(): Promise<string[]>;
  /** Calls onRemoved on link removals; returns what stops it. */
  openLinkEvents(onRemoved: () => void, onLoss: (error: Error, fatal: boolean) => void): { close(): Promise<void> };
  backstopMs: number;
  logger: Logger;
}

export class NamespaceWatch {
  private running: Promise<void> | undefined;
  private again = false;
  private readonly monitor: { close(): Promise<void> } | undefined;
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: NamespaceWatchDeps) {
    try {
      this.monitor = deps.openLinkEvents(
        () => this.trigger(),
        (error, fatal) => deps.logger.warn('link events lost; checking followed namespaces', { error: error.message, fatal }),
      );
    } catch (err) {
      deps.logger.error('link events unavailable: followed namespaces are checked periodically only', { error: errorMessage(err) });
    }
    if (deps.backstopMs > 0) {
      this.timer = setInterval(() => this.trigger(), deps.backstopMs);
      this.timer.unref();
    }
  }

  /** Check now, or once more after the check that is running. */
  trigger(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.run().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.trigger();
      }
    });
  }

  private async run(): Promise<void> {
    try {
      const released = await this.deps.release();
      if (released.length > 0) this.deps.logger.info('released sandboxes whose namespace died', { sandboxes: released });
    } catch (err) {
      this.deps.logger.error('release of sandboxes with dead namespaces failed', { error: errorMessage(err) });
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.monitor?.close();
    this.again = false;
    await this.running;
  }
}
