import { open, readFile, rm, mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { progress } from "./log.js";

/**
 * An exclusive lock between processes: a file created with O_EXCL holding the owner's pid.
 * A lock whose owner is dead is taken over, so a killed run never blocks the next one.
 * `waiting`: the line printed once when the lock is held by another process (default:
 * "waiting for <what> held by process <pid> (<path>)").
 */
export async function withFileLock<T>(
  path: string,
  what: string,
  fn: () => Promise<T>,
  waiting: (owner: number) => string = (owner) => `waiting for ${what} held by process ${owner} (${path})`,
): Promise<T> {
  await mkdir(dirname(path), { recursive: true });
  let announced = false;
  for (;;) {
    try {
      const handle = await open(path, "wx");
      await handle.writeFile(String(process.pid));
      await handle.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const owner = Number((await readFile(path, "utf8").catch(() => "")).trim());
      if (!owner || !isAlive(owner)) {
        await rm(path, { force: true });
        continue;
      }
      // Another holder in this very process (concurrent creates of one server or bench) is
      // a sibling the caller started itself: naming its own pid would tell nobody anything.
      if (!announced && owner !== process.pid) progress(waiting(owner));
      announced = true;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(path, { force: true });
  }
}

/** Whether a process with this pid exists (EPERM: it does, as another user). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
