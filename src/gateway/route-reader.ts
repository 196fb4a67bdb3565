import { randomBytes } from "node:crypto";
import { access, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { ClusterRoute, GatewayPaths, HttpRoute } from "./gateway-files.js";

/**
 * The gateway reads routes from files on every connection rather than caching them: a
 * route written by the runtime (start, stop, destroy) counts from the next connection on,
 * and there is no cache to go stale. A small JSON read costs far less than the TLS handshake.
 */

/** Cluster ids as tempkube makes them; anything else in a name is refused before it touches a path. */
export const CLUSTER_ID = /^[a-z][a-z0-9]{2,15}$/;

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as T;
  } catch (err) {
    // Missing means "no route"; a file that does not parse is treated the same (never half-written: renamed into place).
    if ((err as NodeJS.ErrnoException).code === "ENOENT" || err instanceof SyntaxError) return undefined;
    throw err;
  }
}

export async function readClusterRoute(paths: GatewayPaths, clusterId: string): Promise<ClusterRoute | undefined> {
  if (!CLUSTER_ID.test(clusterId)) return undefined;
  const route = await readJson<ClusterRoute>(paths.route(clusterId));
  // A route file names its cluster; one that names another is never followed (never the wrong cluster).
  return route && route.clusterId === clusterId ? route : undefined;
}

/** Host names that may name a file: DNS characters only, so no path can be smuggled in. */
export const HOSTNAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;

export async function readHttpRoute(paths: GatewayPaths, hostname: string): Promise<HttpRoute | undefined> {
  if (!HOSTNAME.test(hostname)) return undefined;
  const route = await readJson<HttpRoute>(`${paths.httpRoutesDir}/${hostname}.json`);
  return route && route.hostname === hostname && typeof route.target === "string" ? route : undefined;
}

function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

export function isSleeping(paths: GatewayPaths, clusterId: string): Promise<boolean> {
  return exists(paths.sleeping(clusterId));
}

/**
 * Asks the server to wake the cluster: `wake/<id>`, written whole and renamed into place.
 * False when a wake is already pending (the server removes the file only after `sleeping/<id>`).
 */
export async function requestWake(paths: GatewayPaths, clusterId: string): Promise<boolean> {
  const target = paths.wake(clusterId);
  if (await exists(target)) return false;
  await mkdir(dirname(target), { recursive: true });
  const tmp = `${target}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  await writeFile(tmp, `${new Date().toISOString()}\n`);
  await rename(tmp, target);
  return true;
}
