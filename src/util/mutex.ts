/**
 * A FIFO async mutex: callers run one at a time in arrival order. With a bound, a caller that would
 * find `maxWaiting` others already waiting is refused at once (the error from `onFull`) instead of
 * joining an ever longer queue; `runAlways` ignores the bound (startup, shutdown, internal upkeep).
 */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  /** Callers inside: the one running (or about to) and those queued behind it. */
  private inside = 0;

  constructor(
    private readonly maxWaiting = Number.POSITIVE_INFINITY,
    private readonly onFull: (maxWaiting: number) => Error = (n) => new Error(`${n} callers are already waiting`),
  ) {}

  /** Callers queued behind the one running (not counting it). */
  get queued(): number {
    return Math.max(0, this.inside - 1);
  }

  run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.queued >= this.maxWaiting && this.inside > 0) return Promise.reject(this.onFull(this.maxWaiting));
    return this.runAlways(fn);
  }

  async runAlways<T>(fn: () => Promise<T>): Promise<T> {
    let release!: () => void;
    const next = new Promise<void>((resolve) => (release = resolve));
    const previous = this.tail;
    this.tail = previous.then(() => next);
    this.inside++;
    try {
      await previous;
      return await fn();
    } finally {
      this.inside--;
      release();
    }
  }
}
