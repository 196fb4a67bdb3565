import { readFile } from "node:fs/promises";
import type { ClusterEgress } from "./host-firewall.js";

/**
 * Where a cluster's DNS asks about names outside the cluster. CoreDNS forwards them to the
 * nameservers of its resolv.conf (it runs with dnsPolicy: Default, so that is the kubelet's
 * `resolvConf`, written per node by cluster-assets.ts), and containerd resolves registries
 * with the host's /etc/resolv.conf from inside the node's network namespace.
 *
 * With egress `internet`: the host's own upstream nameservers, IPv4 and not loopback (a
 * loopback resolver, such as systemd-resolved's 127.0.0.53, is the node namespace's own
 * loopback there, where nothing answers; its upstreams are in
 * /run/systemd/resolve/resolv.conf). With `none`, or when the host has no such nameserver:
 * the node's gateway, which is the host and refuses port 53 at once (host-firewall.ts), so
 * a lookup of an outside name fails in milliseconds instead of waiting out timeouts.
 * The host's search domains are not passed on: names in a cluster are the cluster's.
 */
export function upstreamNameservers(resolvConf: string): string[] {
  const servers: string[] = [];
  for (const line of resolvConf.split("\n")) {
    const m = /^\s*nameserver\s+(\d+\.\d+\.\d+\.\d+)\s*$/.exec(line);
    if (m && !m[1].startsWith("127.") && !m[1].startsWith("0.") && !servers.includes(m[1])) servers.push(m[1]);
  }
  return servers.slice(0, 3); // glibc and CoreDNS read at most three
}

const HOST_RESOLV_CONFS = ["/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"];

/** The resolv.conf a node's pods with dnsPolicy: Default (CoreDNS among them) get. */
export async function nodeResolvConf(egress: ClusterEgress, gateway: string): Promise<string> {
  if (egress === "internet") {
    for (const file of HOST_RESOLV_CONFS) {
      const servers = upstreamNameservers(await readFile(file, "utf8").catch(() => ""));
      if (servers.length) return servers.map((s) => `nameserver ${s}\n`).join("");
    }
  }
  return `nameserver ${gateway}\n`;
}
