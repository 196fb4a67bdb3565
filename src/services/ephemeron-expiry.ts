import type { Clock } from "../core/clock.js";

/** setTimeout's ceiling (a longer delay fires at once in Node); longer waits are re-armed. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * One timer per Ephemeron at its expirationTime: expiry is exact to the timer, never a
 * poll (the reference requeues at `expirationTime − now`, src/controller/expiry.rs). A timer
 * longer than setTimeout allows is armed for the ceiling and re-armed when it fires early;
 * setting a name again moves its timer (a changed expirationTime).
 */
export class ExpiryTimers {
  private readonly timers = new Map<string, { at: number; handle: unknown }>();

  constructor(
    private readonly clock: Clock,
    private readonly onExpire: (name: string, at: number) => void,
  ) {}

  /** Arms (or moves) the timer of `name` for epoch ms `at`; a time already past fires on the next tick. */
  set(name: string, at: number): void {
    const current = this.timers.get(name);
    if (current?.at === at) return;
    if (current) this.clock.clearTimer(current.handle);
    this.arm(name, at);
  }

  cancel(name: string): void {
    const current = this.timers.get(name);
    if (!current) return;
    this.clock.clearTimer(current.handle);
    this.timers.delete(name);
  }

  clear(): void {
    for (const name of [...this.timers.keys()]) this.cancel(name);
  }

  get size(): number {
    return this.timers.size;
  }

  /** When `name` expires, if a timer is armed for it. */
  at(name: string): number | undefined {
    return this.timers.get(name)?.at;
  }

  private arm(name: string, at: number): void {
    const delay = Math.max(0, Math.min(at - this.clock.now(), MAX_TIMER_MS));
    const handle = this.clock.setTimer(() => {
      if (this.timers.get(name)?.handle !== handle) return;
      if (this.clock.now() < at) return this.arm(name, at);
      this.timers.delete(name);
      this.onExpire(name, at);
    }, delay);
    this.timers.set(name, { at, handle });
  }
}
