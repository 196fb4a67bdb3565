import { readFile } from "node:fs/promises";

/** Sum of RssAnon of these processes: the memory that is theirs alone (binaries' pages are shared). */
export async function privateMemoryMiB(pids: number[]): Promise<number> {
  let kb = 0;
  for (const pid of pids) {
    const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
    kb += Number(/^RssAnon:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
  }
  return kb / 1024;
}
