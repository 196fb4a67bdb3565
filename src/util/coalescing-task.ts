/**
 * Runs an async task on demand; demands that arrive while it runs coalesce into one more
 * run. The shape of a level-triggered loop: every run looks at the whole state anyway.
 */
export class CoalescingTask {
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(
    private readonly task: () => Promise<void>,
    private readonly onError: (err: unknown) => void,
  ) {}

  get busy(): boolean {
    return this.running !== undefined;
  }

  start(): void {
    this.stopped = false;
    this.trigger();
  }

  /** No new runs; resolves when the current one has finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    while (this.running) await this.running;
  }

  trigger(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.task()
      .catch(this.onError)
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.trigger();
        }
      });
  }
}
