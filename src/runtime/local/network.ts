import { run, succeeds } from "../../util/exec.js";
import {
  installClusterFirewall,
  leftoverFirewall,
  removeClusterFirewall,
  type ClusterEgress,
} from "./host-firewall.js";

/**
 * Each cluster gets a host bridge `tkb<index>` on 172.30.<index>.0/24 (gateway .1); each of
 * its nodes a network namespace joined to that bridge by a veth pair (node k at .<2+k>).
 * Pods of node k use 10.<128+index>.<k>.0/24 behind a CNI bridge inside the node's
 * namespace, so node and pod ranges are unique on the host. The host's firewall
 * (host-firewall.ts) keeps clusters from reaching each other and the host's own services,
 * and lets them out to the world only with egress `internet`. Indexes are reserved host-wide
 * (address-ranges.ts): the names and addresses above belong to the host, not to a data dir.
 */
export const SERVICE_CIDR = "10.96.0.0/16";
export const KUBERNETES_SERVICE_IP = "10.96.0.1";
export const DNS_SERVICE_IP = "10.96.0.10";
export const MAX_CLUSTER_INDEX = 120;
/**
 * The CIDRs that cover exactly `<first>.<lo>.0.0` to `<first>.<hi>.255.255`: the largest
 * aligned blocks, so that nothing outside the range is covered.
 */
export function secondOctetRangeCidrs(first: number, lo: number, hi: number): string[] {
  const cidrs: string[] = [];
  for (let v = lo; v <= hi;) {
    let size = 1;
    while (v % (size * 2) === 0 && v + size * 2 - 1 <= hi) size *= 2;
    cidrs.push(`${first}.${v}.0.0/${16 - Math.log2(size)}`);
    v += size;
  }
  return cidrs;
}

/**
 * Every address tempkube's plan gives out on this host: nodes and the registry (172.30/16),
 * all clusters' pods (10.129-10.248) and Services. The host routes none of the pod or
 * Service ranges, so without a rule a packet for another cluster's pod would leave by the
 * default route and reach whatever answers to that address outside. Exactly the pod ranges,
 * not 10.128/9: the host's own resolver may live beside them (10.255.255.53 here), and
 * egress `internet` must reach it.
 */
export const ADDRESS_PLAN = ["172.30.0.0/16", ...secondOctetRangeCidrs(10, 129, 128 + MAX_CLUSTER_INDEX), SERVICE_CIDR];

/** Node namespaces are named by cluster id and node, so that the id alone finds them all (teardown, leftovers). */
function clusterNetnsPrefix(clusterId: string): string {
  return `tk-${clusterId}-`;
}

export function nodeNetnsName(clusterId: string, node: string): string {
  return `${clusterNetnsPrefix(clusterId)}${node}`;
}

/** Where `ip netns add` mounts a named namespace, for nsenter --net and the supervisor. */
export function netnsPath(name: string): string {
  return `/run/netns/${name}`;
}

/** The network namespaces on the host named as the cluster's, whatever its plan says. */
export async function clusterNetnsNames(clusterId: string): Promise<string[]> {
  const { stdout } = await run("ip", ["netns", "list"]);
  return stdout
    .split("\n")
    .map((l) => l.split(" ")[0])
    .filter((name) => name.startsWith(clusterNetnsPrefix(clusterId)));
}

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
  /** What may leave the cluster for the outside; absent in clusters made before egress existed, which had none. */
  egress?: ClusterEgress;
  nodes: NodeNetwork[];
}

export function planNetwork(
  clusterId: string,
  index: number,
  nodeNames: string[],
  egress: ClusterEgress = "none",
): ClusterNetwork {
  if (!Number.isInteger(index) || index < 1 || index > MAX_CLUSTER_INDEX)
    throw new Error(`cluster index ${index} out of range`);
  return {
    index,
    bridge: `tkb${index}`,
    gateway: `172.30.${index}.1`,
    prefixLength: 24,
    clusterCidr: `10.${128 + index}.0.0/16`,
    egress,
    nodes: nodeNames.map((name, k) => ({
      name,
      netns: nodeNetnsName(clusterId, name),
      netnsPath: netnsPath(nodeNetnsName(clusterId, name)),
      ip: `172.30.${index}.${2 + k}`,
      podCidr: `10.${128 + index}.${k}.0/24`,
      hostVeth: `tkv${index}n${k}`,
    })),
  };
}

async function ip(args: string[]): Promise<void> {
  await run("ip", args);
}

/**
 * Several `ip` commands in one process (`ip -batch`), stopping at the first that fails: a
 * start runs this for every node, and each `ip` process costs ~15 ms on a 2-core host.
 */
async function ipBatch(commands: string[][], netns?: string): Promise<void> {
  await run("ip", [...(netns ? ["-n", netns] : []), "-batch", "-"], {
    input: commands.map((c) => c.join(" ")).join("\n") + "\n",
  });
}

async function linkExists(name: string, netns?: string): Promise<boolean> {
  return succeeds("ip", [...(netns ? ["-n", netns] : []), "link", "show", name]);
}

/** Creates (or completes) the cluster's network. Safe to run again after a partial run. */
export async function setupNetwork(clusterId: string, net: ClusterNetwork): Promise<void> {
  // The firewall first: its rules name interfaces, which need not exist yet, and the links
  // are never up without them.
  await installClusterFirewall(clusterId, {
    bridge: net.bridge,
    nodeCidr: `172.30.${net.index}.0/${net.prefixLength}`,
    clusterCidr: net.clusterCidr,
    egress: net.egress ?? "none",
    internalRanges: ADDRESS_PLAN,
  });
  if (!(await linkExists(net.bridge))) {
    await ip(["link", "add", net.bridge, "type", "bridge"]);
  }
  const host = [
    // `replace`, not `add`: the same command whether the address is there already (a start) or not.
    ["addr", "replace", `${net.gateway}/${net.prefixLength}`, "dev", net.bridge],
    ["link", "set", net.bridge, "up"],
  ];
  for (const node of net.nodes) {
    if (!(await succeeds("ip", ["netns", "pids", node.netns]))) await ip(["netns", "add", node.netns]);
    if (!(await linkExists("eth0", node.netns))) {
      await succeeds("ip", ["link", "del", node.hostVeth]);
      await ip(["link", "add", node.hostVeth, "type", "veth", "peer", "name", `${node.hostVeth}p`]);
      await ip(["link", "set", `${node.hostVeth}p`, "netns", node.netns]);
      await ip(["-n", node.netns, "link", "set", `${node.hostVeth}p`, "name", "eth0"]);
    }
    host.push(["link", "set", node.hostVeth, "master", net.bridge], ["link", "set", node.hostVeth, "up"]);
  }
  await ipBatch(host);
  for (const node of net.nodes) {
    await ipBatch(
      [
        ["addr", "replace", `${node.ip}/${net.prefixLength}`, "dev", "eth0"],
        ["link", "set", "eth0", "up"],
        ["link", "set", "lo", "up"],
        ["route", "replace", "default", "via", net.gateway],
        ...net.nodes
          .filter((other) => other !== node)
          .map((other) => ["route", "replace", other.podCidr, "via", other.ip]),
      ],
      node.netns,
    );
    await nodeSysctls(node);
  }
}

/**
 * Forwarding for pods, and bridged pod traffic through iptables so Services work (per
 * namespace). No IPv6 in a node's namespace: clusters are IPv4 only, and kube-proxy runs
 * a second, IPv6 proxier whenever the namespace has IPv6 (cmd/kube-proxy/app/server_linux.go
 * platformCheckSupported reads net.ipv6.conf.all.disable_ipv6), which doubled its work:
 * its first full sync of each family took ~0.7 s of a create on a 2-core host, the IPv6 one
 * with no Service to write, and every later sync ran twice. Pods' own namespaces start
 * from the kernel's defaults (net.core.devconf_inherit_init_net), so they keep their ::1.
 */
async function nodeSysctls(node: NodeNetwork): Promise<void> {
  const settings: Record<string, string> = {
    "net.ipv4.ip_forward": "1",
    "net.bridge.bridge-nf-call-iptables": "1",
    "net.ipv4.conf.all.route_localnet": "1",
    "net.ipv6.conf.all.disable_ipv6": "1",
    "net.ipv6.conf.default.disable_ipv6": "1",
  };
  await run("nsenter", [
    `--net=${node.netnsPath}`,
    "sysctl",
    "-qw",
    ...Object.entries(settings).map(([key, value]) => `${key}=${value}`),
  ]);
}

/**
 * Removes everything setupNetwork made, found by the names it gives, so that it needs no
 * plan (a cluster's state may never have been written, or another process removed it
 * mid-boot): node namespaces `tk-<id>-*` (their veths go with them) and the firewall rules
 * tagged with its id unless `idInUse` (a live cluster of another data dir has that id, so
 * those are its), and the bridge and veths of `index`, which the caller passes only when the
 * cluster holds that index's reservation (links of an index are the holder's). Tolerates
 * pieces that are already gone.
 */
export async function teardownNetwork(clusterId: string, index: number | undefined, idInUse = false): Promise<void> {
  if (!idInUse) {
    for (const name of await clusterNetnsNames(clusterId)) await succeeds("ip", ["netns", "del", name]);
    await removeClusterFirewall(clusterId);
  }
  if (index !== undefined) {
    const { stdout: links } = await run("ip", ["-o", "link", "show"]);
    for (const m of links.matchAll(/^\d+: ([^:@]+)[:@]/gm)) {
      if (m[1] === `tkb${index}` || m[1].startsWith(`tkv${index}n`)) await succeeds("ip", ["link", "del", m[1]]);
    }
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
  left.push(...(await leftoverFirewall(clusterId)));
  return left;
}
