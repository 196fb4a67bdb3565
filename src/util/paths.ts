import { join } from "node:path";

/** Where built upstream components and images live: outside the work tree, shared by checkouts. */
export function cacheDir(): string {
  return process.env.TEMPKUBE_CACHE ?? "/var/cache/tempkube";
}

/** Where clusters' state lives (one directory per cluster). */
export function dataDir(): string {
  return process.env.TEMPKUBE_HOME ?? "/var/lib/tempkube";
}

/**
 * What every tempkube instance on this host shares, whatever its data dir: address-range
 * reservations (link names and addresses are host-wide) and the host image registry (one
 * address:port per host). Fixed on purpose: a per-instance override would bring back the
 * collisions it exists to prevent.
 */
export const HOST_STATE_DIR = "/var/lib/tempkube-host";

export function logsDir(): string {
  return join(cacheDir(), "logs");
}
