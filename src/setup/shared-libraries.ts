import { basename } from "node:path";
import { run } from "../util/exec.js";

/**
 * Library paths in `ldd` output: "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" and
 * "/lib64/ld-linux-x86-64.so.2 (0x…)"; linux-vdso (no path) and "not found" are left out,
 * as docker-library/busybox's builder reads it (awk on $1 ~ /^\// and $2 == "=>").
 */
export function parseLdd(output: string): string[] {
  const paths: string[] = [];
  for (const line of output.split("\n")) {
    const fields = line.trim().split(/\s+/);
    if (fields[0]?.startsWith("/")) paths.push(fields[0]);
    else if (fields[1] === "=>" && fields[2]?.startsWith("/")) paths.push(fields[2]);
  }
  return paths;
}

/**
 * Every shared library the given files load, transitively, the files themselves included,
 * one path per file name (the loader is named both /lib64/ld-linux-x86-64.so.2 and
 * /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2; an image puts both in one lib directory).
 */
export async function sharedLibraryClosure(files: string[], logFile?: string): Promise<string[]> {
  const byName = new Map<string, string>();
  const queue = [...files];
  while (queue.length > 0) {
    const file = queue.shift()!;
    if (byName.has(basename(file))) continue;
    byName.set(basename(file), file);
    const { stdout } = await run("ldd", [file], { logFile });
    queue.push(...parseLdd(stdout));
  }
  return [...byName.values()];
}
