import { AsyncLocalStorage } from "node:async_hooks";
import { TempkubeError } from "../../util/errors.js";

/**
 * The signal that ends every wait of the operation running in this async context (a boot,
 * see failOnCrashLoop): carried implicitly so that each of a boot's many waits, however
 * deeply called, ends at once without every call site passing it along.
 */
const operationSignal = new AsyncLocalStorage<AbortSignal>();

/** Runs `operation` so that each waitFor (and supervised start) inside it throws `signal`'s reason once it aborts. */
export function abortableBy<T>(signal: AbortSignal, operation: () => Promise<T>): Promise<T> {
  return operationSignal.run(signal, operation);
}

/** Throws the reason the surrounding operation was aborted, if it was. */
export function throwIfAborted(): void {
  operationSignal.getStore()?.throwIfAborted();
}

/** Polls `check` until it returns true; times out with an error naming what was awaited. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  intervalMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    throwIfAborted();
    if (await check()) return;
    throwIfAborted();
    if (Date.now() > deadline) {
      // A step given what is left of an overall deadline may have had no time of its own.
      const waited = timeoutMs >= 1000 ? ` after ${Math.round(timeoutMs / 1000)}s` : "";
      throw new TempkubeError("timeout", `timed out${waited} waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
