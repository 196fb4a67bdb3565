import { isIP } from "node:net";
import { hostname } from "node:os";
import { run } from "../util/exec.js";

/**
 * The default public address (`tempkube server --public-address`): the name or address
 * other machines reach this host by, written into every kubeconfig handed out.
 */

/** What the listen host says about it: a specific address, loopback only, or every address (unspecified). */
export function listenScope(host: string): "loopback" | "unspecified" | "specific" {
  const h = host.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  if (h === "" || h === "0.0.0.0" || h === "::" || h === "0:0:0:0:0:0:0:0") return "unspecified";
  if (h === "localhost" || h === "::1" || h === "::ffff:127.0.0.1" || (isIP(h) === 4 && h.startsWith("127.")))
    return "loopback";
  return "specific";
}

/** The default route's interface, and its preferred source address when the route names one (`ip -j route show default`). */
export function defaultRoute(routesJson: string): { dev: string; prefsrc?: string } | undefined {
  const routes = JSON.parse(routesJson) as { dst?: string; dev?: string; prefsrc?: string; metric?: number }[];
  const best = routes.filter((r) => r.dst === "default" && r.dev).sort((a, b) => (a.metric ?? 0) - (b.metric ?? 0))[0];
  return best ? { dev: best.dev!, prefsrc: best.prefsrc } : undefined;
}

interface AddrInfo {
  family: string;
  local?: string;
  scope?: string;
  deprecated?: boolean;
  tentative?: boolean;
}

/**
 * The interface's first global address of the family (`ip -j addr show dev <dev>`):
 * link-local ones need a zone and host-scoped ones do not leave the host.
 */
export function interfaceAddress(addrsJson: string, family: "inet" | "inet6"): string | undefined {
  const links = JSON.parse(addrsJson) as { addr_info?: AddrInfo[] }[];
  for (const link of links)
    for (const a of link.addr_info ?? [])
      if (a.family === family && a.local && a.scope === "global" && !a.deprecated && !a.tentative) return a.local;
  return undefined;
}

/** The choice itself, given what was found on the host. */
export function choosePublicAddress(
  listenHost: string,
  found: { defaultRouteAddress?: string; hostname: string },
): string {
  switch (listenScope(listenHost)) {
    case "specific":
      return listenHost.replace(/^\[(.*)\]$/, "$1");
    case "loopback":
      // Only this host can connect at all; a name would have to resolve to loopback too.
      return "127.0.0.1";
    case "unspecified":
      return found.defaultRouteAddress ?? found.hostname;
  }
}

/** The address of the interface of the default route (IPv4 first, then IPv6), if the host has one. */
export async function defaultRouteAddress(): Promise<string | undefined> {
  for (const [flag, family] of [
    ["-4", "inet"],
    ["-6", "inet6"],
  ] as const) {
    const routes = await run("ip", [flag, "-j", "route", "show", "default"]).catch(() => undefined);
    const route = routes && defaultRoute(routes.stdout || "[]");
    if (!route) continue;
    if (route.prefsrc) return route.prefsrc;
    const addrs = await run("ip", [flag, "-j", "addr", "show", "dev", route.dev]).catch(() => undefined);
    const address = addrs && interfaceAddress(addrs.stdout || "[]", family);
    if (address) return address;
  }
  return undefined;
}

/** The default --public-address for a server listening on `listenHost`. */
export async function defaultPublicAddress(listenHost: string): Promise<string> {
  const found = listenScope(listenHost) === "unspecified" ? { defaultRouteAddress: await defaultRouteAddress() } : {};
  return choosePublicAddress(listenHost, { ...found, hostname: hostname() });
}
