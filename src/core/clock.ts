/** Time as the controller sees it; tests pass a fake one. */
export interface Clock {
  now(): number;
  setTimer(fn: () => void, delayMs: number): unknown;
  clearTimer(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer: (fn, delayMs) => setTimeout(fn, Math.max(0, Math.min(delayMs, 2 ** 31 - 1))),
  clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
};
