import { join } from "node:path";

/** Where built upstream components and images live: outside the work tree, shared by checkouts. */
export function cacheDir(): string {
  return process.env.TEMPKUBE_CACHE ?? "/var/cache/tempkube";
}

/** Where clusters' state lives (one directory per cluster). */
export function dataDir(): string {
  return process.env.TEMPKUBE_HOME ?? "/var/lib/tempkube";
}

export function logsDir(): string {
  return join(cacheDir(), "logs");
}
