import { TempkubeError } from "../../util/errors.js";

/** Polls `check` until it returns true; times out with an error naming what was awaited. */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, intervalMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) {
      // A step given what is left of an overall deadline may have had no time of its own.
      const waited = timeoutMs >= 1000 ? ` after ${Math.round(timeoutMs / 1000)}s` : "";
      throw new TempkubeError("timeout", `timed out${waited} waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
