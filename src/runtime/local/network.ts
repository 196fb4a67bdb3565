import { run, succeeds } from "../../util/exec.js";

/**
 * Each cluster gets a host bridge `tkb<index>` on 172.30.<index>.0/24 (gateway .1); each of
 * its nodes a network namespace joined to that bridge by a veth pair (node k at .<2+k>).
 * Pods of node k use 10.<128+index>.<k>.0/24 behind a CNI bridge inside the node's
 * namespace, so node and pod ranges are unique on the host. Forwarded traffic that enters
 * or leaves a cluster's bridge towards anything but that same bridge is dropped, which
 * keeps clusters from reaching each other.
 */
export const SERVICE_CIDR = "10.96.0.0/16";
export const KUBERNETES_SERVICE_IP = "10.96.0.1";
export const DNS_SERVICE_IP = "10.96.0.10";
export const MAX_CLUSTER_INDEX = 120;
const ISOLATION_CHAIN = "TEMPKUBE-ISOLATION";

export interface NodeNetwork {
  name: string;
  netns: string;
  netnsPath: string;
  ip: string;
  podCidr: string;
  hostVeth: string;
}

export interface ClusterNetwork {
  index: number;
  bridge: string;
  gateway: string;
  prefixLength: number;
  clusterCidr: string;
  nodes: NodeNetwork[];
}

export function planNetwork(clusterId: string, index: number, nodeNames: string[]): ClusterNetwork {
  if (!Number.isInteger(index) || index < 1 || index > MAX_CLUSTER_INDEX) throw new Error(`cluster index ${index} out of range`);
  return {
    index,
    bridge: `tkb${index}`,
    gateway: `172.30.${index}.1`,
    prefixLength: 24,
    clusterCidr: `10.${128 + index}.0.0/16`,
    nodes: nodeNames.map((name, k) => ({
      name,
      netns: `tk-${clusterId}-${name}`,
      netnsPath: `/run/netns/tk-${clusterId}-${name}`,
      ip: `172.30.${index}.${2 + k}`,
      podCidr: `10.${128 + index}.${k}.0/24`,
      hostVeth: `tkv${index}n${k}`,
    })),
  };
}

async function ip(args: string[]): Promise<void> {
  await run("ip", args);
}

async function linkExists(name: string, netns?: string): Promise<boolean> {
  return succeeds("ip", [...(netns ? ["-n", netns] : []), "link", "show", name]);
}

/** Creates (or completes) the cluster's network. Safe to run again after a partial run. */
export async function setupNetwork(clusterId: string, net: ClusterNetwork): Promise<void> {
  if (!(await linkExists(net.bridge))) {
    await ip(["link", "add", net.bridge, "type", "bridge"]);
  }
  await succeeds("ip", ["addr", "add", `${net.gateway}/${net.prefixLength}`, "dev", net.bridge]);
  await ip(["link", "set", net.bridge, "up"]);
  for (const node of net.nodes) {
    if (!(await succeeds("ip", ["netns", "pids", node.netns]))) await ip(["netns", "add", node.netns]);
    if (!(await linkExists("eth0", node.netns))) {
      await succeeds("ip", ["link", "del", node.hostVeth]);
      await ip(["link", "add", node.hostVeth, "type", "veth", "peer", "name", `${node.hostVeth}p`]);
      await ip(["link", "set", `${node.hostVeth}p`, "netns", node.netns]);
      await ip(["-n", node.netns, "link", "set", `${node.hostVeth}p`, "name", "eth0"]);
    }
    await ip(["link", "set", node.hostVeth, "master", net.bridge]);
    await ip(["link", "set", node.hostVeth, "up"]);
    await succeeds("ip", ["-n", node.netns, "addr", "add", `${node.ip}/${net.prefixLength}`, "dev", "eth0"]);
    await ip(["-n", node.netns, "link", "set", "eth0", "up"]);
    await ip(["-n", node.netns, "link", "set", "lo", "up"]);
    await ip(["-n", node.netns, "route", "replace", "default", "via", net.gateway]);
    for (const other of net.nodes) {
      if (other !== node) await ip(["-n", node.netns, "route", "replace", other.podCidr, "via", other.ip]);
    }
    await nodeSysctls(node);
  }
  await addIsolationRules(clusterId, net);
}

/** Forwarding for pods, and bridged pod traffic through iptables so Services work (per namespace). */
async function nodeSysctls(node: NodeNetwork): Promise<void> {
  const settings: Record<string, string> = {
    "net.ipv4.ip_forward": "1",
    "net.bridge.bridge-nf-call-iptables": "1",
    "net.ipv4.conf.all.route_localnet": "1",
  };
  for (const [key, value] of Object.entries(settings)) {
    await run("nsenter", [`--net=${node.netnsPath}`, "sysctl", "-qw", `${key}=${value}`]);
  }
}

function isolationRules(clusterId: string, net: ClusterNetwork): string[][] {
  const tag = ["-m", "comment", "--comment", `tempkube:${clusterId}`];
  return [
    ["-i", net.bridge, "-o", net.bridge, ...tag, "-j", "ACCEPT"],
    ["-i", net.bridge, ...tag, "-j", "DROP"],
    ["-o", net.bridge, ...tag, "-j", "DROP"],
  ];
}

async function addIsolationRules(clusterId: string, net: ClusterNetwork): Promise<void> {
  await succeeds("iptables", ["-w", "-N", ISOLATION_CHAIN]);
  if (!(await succeeds("iptables", ["-w", "-C", "FORWARD", "-j", ISOLATION_CHAIN]))) {
    await run("iptables", ["-w", "-I", "FORWARD", "1", "-j", ISOLATION_CHAIN]);
  }
  for (const rule of isolationRules(clusterId, net)) {
    if (!(await succeeds("iptables", ["-w", "-C", ISOLATION_CHAIN, ...rule]))) {
      await run("iptables", ["-w", "-A", ISOLATION_CHAIN, ...rule]);
    }
  }
}

/**
 * Removes everything setupNetwork made, found by the names it gives, so that it needs no
 * plan (a cluster's state may never have been written, or another process removed it
 * mid-boot): node namespaces `tk-<id>-*` (their veths go with them), the bridge and veths
 * of its address range, and the isolation rules tagged with its id. Tolerates pieces that
 * are already gone.
 */
export async function teardownNetwork(clusterId: string, index: number | undefined): Promise<void> {
  const { stdout: netns } = await run("ip", ["netns", "list"]);
  for (const name of netns.split("\n").map((l) => l.split(" ")[0])) {
    if (name.startsWith(`tk-${clusterId}-`)) await succeeds("ip", ["netns", "del", name]);
  }
  if (index !== undefined) {
    const { stdout: links } = await run("ip", ["-o", "link", "show"]);
    for (const m of links.matchAll(/^\d+: ([^:@]+)[:@]/gm)) {
      if (m[1] === `tkb${index}` || m[1].startsWith(`tkv${index}n`)) await succeeds("ip", ["link", "del", m[1]]);
    }
  }
  const { stdout: rules } = await run("iptables", ["-w", "-S", ISOLATION_CHAIN]).catch(() => ({ stdout: "" }));
  for (const line of rules.split("\n")) {
    const args = (line.match(/"[^"]*"|\S+/g) ?? []).map((a) => a.replace(/^"|"$/g, ""));
    if (args[0] === "-A" && args.includes(`tempkube:${clusterId}`)) await succeeds("iptables", ["-w", "-D", ...args.slice(1)]);
  }
}

/** Lists what is left of a cluster's network on the host (for destroy checks and doctor). */
export async function leftoverNetwork(clusterId: string, net?: ClusterNetwork): Promise<string[]> {
  const left: string[] = [];
  const { stdout: netns } = await run("ip", ["netns", "list"]);
  for (const node of net?.nodes ?? []) {
    if (netns.split("\n").some((l) => l.split(" ")[0] === node.netns)) left.push(`network namespace ${node.netns}`);
    if (await linkExists(node.hostVeth)) left.push(`veth ${node.hostVeth}`);
  }
  if (net && (await linkExists(net.bridge))) left.push(`bridge ${net.bridge}`);
  const { stdout: rules } = await run("iptables-save", []);
  if (rules.includes(`tempkube:${clusterId}`)) left.push("iptables rules");
  return left;
}
