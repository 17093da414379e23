/**
 * Undo steps registered as things are started, run once in reverse order: at the end, on an error, or
 * on Ctrl-C / SIGTERM (a second Ctrl-C while cleaning up is ignored so nothing is left half-removed).
 */
export class Cleanup {
  private readonly steps: { name: string; undo: () => Promise<void> | void }[] = [];
  private running: Promise<void> | undefined;
  private finished = false;

  constructor(private readonly log: (line: string) => void) {}

  add(name: string, undo: () => Promise<void> | void): void {
    this.steps.push({ name, undo });
  }

  run(): Promise<void> {
    this.running ??= (async () => {
      for (const step of [...this.steps].reverse()) {
        try {
          await step.undo();
        } catch (err) {
          this.log(`cleanup of ${step.name} failed: ${(err as Error).message}`);
        }
      }
      this.finished = true;
    })();
    return this.running;
  }

  /**
   * On SIGINT / SIGTERM / SIGHUP: clean up, then exit with 128 + signal number. On an uncaught error
   * anywhere (a stray stream error, say): report it, clean up, exit 1, so nothing is left behind.
   */
  exitOnSignals(): void {
    const onFatal = (err: unknown) => {
      this.log(`unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      if (this.finished) process.exit(1);
      void this.run().finally(() => process.exit(1));
    };
    process.on('uncaughtException', onFatal);
    process.on('unhandledRejection', onFatal);
    const codes: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 };
    for (const [signal, code] of Object.entries(codes) as [NodeJS.Signals, number][]) {
      process.on(signal, () => {
        if (this.finished) process.exit(code);
        if (this.running) {
          this.log(`${signal}: still cleaning up, please wait`);
          return;
        }
        this.log(`${signal}: stopping the bench and removing everything it started`);
        void this.run().finally(() => process.exit(code));
      });
    }
  }
}
