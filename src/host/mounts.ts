import { readFile } from "node:fs/promises";
import { succeeds } from "../util/exec.js";

/** Mount points at or below `prefix`, deepest first (the order they must be unmounted in). */
export async function mountsUnder(prefix: string): Promise<string[]> {
  const info = await readFile("/proc/self/mountinfo", "utf8");
  const points = info
    .split("\n")
    .filter(Boolean)
    .map((line) => unescapeMountPath(line.split(" ")[4]));
  const base = prefix.endsWith("/") ? prefix : `${prefix}/`;
  return [...new Set(points.filter((p) => p === prefix || p.startsWith(base)))].sort((a, b) => b.length - a.length);
}

function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Unmounts everything below `prefix`; a busy mount is detached lazily so nothing stays behind. */
export async function unmountAll(prefix: string): Promise<void> {
  for (let pass = 0; pass < 5; pass++) {
    const mounts = await mountsUnder(prefix);
    if (mounts.length === 0) return;
    for (const m of mounts) {
      if (!(await succeeds("umount", [m]))) await succeeds("umount", ["-l", m]);
    }
  }
}
