import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { GatewayPaths, HttpRoute } from "../gateway/gateway-files.js";
// The names route-reader.ts reads: DNS characters only, so no path can be smuggled in.
import { HOSTNAME } from "../gateway/route-reader.js";

/**
 * The gateway's fixed HTTP routes for Ephemerons: `<data dir>/gateway/http-routes/<host>.json`
 * (read by the gateway on every request, src/gateway/route-reader.ts), and the PEM copies of
 * a `tlsSecretName` under `<data dir>/gateway/http-tls/`. Every file is written whole and
 * renamed into place, so the gateway never reads half of one. A route file belongs to the
 * controller that wrote it (`owner`): one owned by another cluster's controller (or made by
 * hand) is never overwritten or removed, so no tenant's Ephemeron can take over a host name.
 */
export const EPHEMERON_OWNER_PREFIX = "ephemeron/";

export function routeOwner(clusterId: string, name: string): string {
  return `${EPHEMERON_OWNER_PREFIX}${clusterId}/${name}`;
}

export function httpTlsDir(paths: GatewayPaths): string {
  return join(paths.root, "http-tls");
}

export function httpRoutePath(paths: GatewayPaths, hostname: string): string {
  if (!HOSTNAME.test(hostname)) throw new Error(`not a host name: ${JSON.stringify(hostname)}`);
  return join(paths.httpRoutesDir, `${hostname}.json`);
}

async function writeWhole(target: string, content: string, mode = 0o644): Promise<void> {
  await mkdir(dirname(target), { recursive: true, mode: 0o755 });
  const tmp = `${target}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  await writeFile(tmp, content, { mode });
  await rename(tmp, target);
}

export async function readRouteFile(path: string): Promise<HttpRoute | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as HttpRoute;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" || err instanceof SyntaxError) return undefined;
    throw err;
  }
}

export type WriteResult = "written" | "unchanged" | "taken";

/** Writes the route unless another owner holds the host name ("taken"); "unchanged" when it is already so. */
export async function writeHttpRoute(paths: GatewayPaths, route: HttpRoute): Promise<WriteResult> {
  const path = httpRoutePath(paths, route.hostname);
  const current = await readRouteFile(path);
  if (current && current.owner !== route.owner) return "taken";
  const content = `${JSON.stringify(route, null, 2)}\n`;
  if (current && JSON.stringify(current, null, 2) + "\n" === content) return "unchanged";
  await writeWhole(path, content);
  return "written";
}

/** Removes the route (and its TLS copies) if this owner holds it. */
export async function removeHttpRoute(paths: GatewayPaths, hostname: string, owner: string): Promise<void> {
  const path = httpRoutePath(paths, hostname);
  const current = await readRouteFile(path);
  if (!current || current.owner !== owner) return;
  await rm(path, { force: true });
  await removeTlsCopy(paths, hostname);
}

/** Every route an Ephemeron controller wrote: host name → [cluster id, Ephemeron name]. */
export async function ephemeronHttpRoutes(paths: GatewayPaths): Promise<Map<string, [string, string]>> {
  const all = new Map<string, [string, string]>();
  for (const [hostname, owner] of await ownedHttpRoutes(paths, "")) {
    const slash = owner.indexOf("/");
    if (slash > 0) all.set(hostname, [owner.slice(0, slash), owner.slice(slash + 1)]);
  }
  return all;
}

/** The routes this cluster's controller wrote: host name → Ephemeron name (with clusterId "": → `<id>/<name>`). */
export async function ownedHttpRoutes(paths: GatewayPaths, clusterId: string): Promise<Map<string, string>> {
  const prefix = clusterId ? `${EPHEMERON_OWNER_PREFIX}${clusterId}/` : EPHEMERON_OWNER_PREFIX;
  const owned = new Map<string, string>();
  let files: string[];
  try {
    files = await readdir(paths.httpRoutesDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return owned;
    throw err;
  }
  for (const file of files) {
    if (!file.endsWith(".json")) continue;
    const route = await readRouteFile(join(paths.httpRoutesDir, file));
    if (route?.owner?.startsWith(prefix) && `${route.hostname}.json` === file)
      owned.set(route.hostname, route.owner.slice(prefix.length));
  }
  return owned;
}

/** PEM copies of a kubernetes.io/tls Secret for the gateway to terminate HTTPS with (key readable by tempkube only). */
export async function writeTlsCopy(
  paths: GatewayPaths,
  hostname: string,
  pem: { cert: string; key: string },
): Promise<{ certFile: string; keyFile: string }> {
  httpRoutePath(paths, hostname); // the same check of the name
  const certFile = join(httpTlsDir(paths), `${hostname}.crt`);
  const keyFile = join(httpTlsDir(paths), `${hostname}.key`);
  const same = await Promise.all([readFile(certFile, "utf8"), readFile(keyFile, "utf8")]).then(
    ([c, k]) => c === pem.cert && k === pem.key,
    () => false,
  );
  if (!same) {
    await writeWhole(keyFile, pem.key, 0o600);
    await writeWhole(certFile, pem.cert);
  }
  return { certFile, keyFile };
}

export async function removeTlsCopy(paths: GatewayPaths, hostname: string): Promise<void> {
  await rm(join(httpTlsDir(paths), `${hostname}.crt`), { force: true });
  await rm(join(httpTlsDir(paths), `${hostname}.key`), { force: true });
}
