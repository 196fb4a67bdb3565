import { clusterEgressProblem, isClusterEgress, type ClusterEgress } from "../../core/cluster-egress.js";
import { TempkubeError } from "../../util/errors.js";
import { run, succeeds } from "../../util/exec.js";
import { REGISTRY_ADDRESS, REGISTRY_PORT } from "./host-registry.js";

/**
 * The host's firewall rules for clusters. Each cluster's traffic enters the host through its
 * bridge tkb<n>; three chains, each jumped to first from its hook, hold every cluster's rules,
 * tagged `tempkube:<id>` so that destroy removes exactly that cluster's:
 *
 * - TEMPKUBE-ISOLATION (FORWARD): a bridge's traffic stays on it, except, with egress
 *   `internet`, towards the outside: never another cluster's bridge, never an address of
 *   tempkube's plan (another cluster's pods, which the host does not route), never link-local.
 * - TEMPKUBE-HOST-GUARD (INPUT, IPv4 and IPv6): a cluster's namespaces reach the host itself
 *   (the gateway 172.30.<n>.1 is the host, and so is every other address of it) only for
 *   replies to connections the host opened and for the services in SERVICES_FOR_CLUSTERS.
 *   Everything else is refused at once, every port alike (a TCP reset, an ICMP port
 *   unreachable), which tells nothing about what listens there. This also holds for the
 *   apiserver, which runs in the control-plane node's namespace: a tenant can make it
 *   connect anywhere (conversion webhooks, services/proxy).
 * - TEMPKUBE-EGRESS (nat POSTROUTING): with egress `internet`, the cluster's node and pod
 *   ranges are masqueraded behind the host's address on the way out.
 */
export { CLUSTER_EGRESS_CHOICES, DEFAULT_CLUSTER_EGRESS, type ClusterEgress } from "../../core/cluster-egress.js";

export function parseClusterEgress(flag: string, text: string): ClusterEgress {
  if (isClusterEgress(text)) return text;
  throw new TempkubeError("invalid-input", clusterEgressProblem(flag, text));
}

export interface HostService {
  what: string;
  address: string;
  protocol: "tcp" | "udp";
  port: number;
}

/** The host gives clusters no DNS (CoreDNS answers inside each cluster); the gateway, once it exists, adds its port here. */
export const SERVICES_FOR_CLUSTERS: readonly HostService[] = [
  {
    what: "the image registry, read-only (host-registry.ts)",
    address: REGISTRY_ADDRESS,
    protocol: "tcp",
    port: REGISTRY_PORT,
  },
];

/** Link-local, which holds cloud metadata services (169.254.169.254): never reached from a cluster. */
const LINK_LOCAL = "169.254.0.0/16";
/** Every cluster's bridge (iptables' interface wildcard). */
const ANY_CLUSTER_BRIDGE = "tkb+";

interface Chain {
  command: "iptables" | "ip6tables";
  table: "filter" | "nat";
  name: string;
  hook: string;
}

const ISOLATION: Chain = { command: "iptables", table: "filter", name: "TEMPKUBE-ISOLATION", hook: "FORWARD" };
const HOST_GUARD: Chain = { command: "iptables", table: "filter", name: "TEMPKUBE-HOST-GUARD", hook: "INPUT" };
const HOST_GUARD_V6: Chain = { command: "ip6tables", table: "filter", name: "TEMPKUBE-HOST-GUARD", hook: "INPUT" };
const EGRESS_NAT: Chain = { command: "iptables", table: "nat", name: "TEMPKUBE-EGRESS", hook: "POSTROUTING" };
const CHAINS = [ISOLATION, HOST_GUARD, HOST_GUARD_V6, EGRESS_NAT];

/** What the rules need to know of a cluster's network. */
export interface FirewallTarget {
  bridge: string;
  /** The bridge's range: the nodes' addresses. */
  nodeCidr: string;
  /** All pod ranges of the cluster. */
  clusterCidr: string;
  /** tempkube's whole address plan on the host: never egress, whichever cluster (or none) has the address. */
  internalRanges: readonly string[];
  egress: ClusterEgress;
}

export function clusterTag(clusterId: string): string {
  return `tempkube:${clusterId}`;
}

/** Each chain's rules for one cluster, in order (without the tag). */
export function firewallRules(t: FirewallTarget): Map<Chain, string[][]> {
  const br = t.bridge;
  const internet = t.egress === "internet";
  const hostGuard = [
    ["-i", br, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"],
    ...SERVICES_FOR_CLUSTERS.map((s) => [
      "-i",
      br,
      "-d",
      `${s.address}/32`,
      "-p",
      s.protocol,
      "-m",
      s.protocol,
      "--dport",
      String(s.port),
      "-j",
      "ACCEPT",
    ]),
    ["-i", br, "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"],
    ["-i", br, "-j", "REJECT", "--reject-with", "icmp-port-unreachable"],
  ];
  // No cluster has IPv6 addresses but the links' own fe80:: ones, which reach the host all the
  // same. Neighbour discovery (ARP's part in IPv6, which iptables never sees for IPv4) passes,
  // so that the refusal reaches the sender at once instead of its connect timing out.
  const hostGuardV6 = [
    ["-i", br, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"],
    ["-i", br, "-p", "ipv6-icmp", "-m", "icmp6", "--icmpv6-type", "135", "-j", "ACCEPT"],
    ["-i", br, "-p", "ipv6-icmp", "-m", "icmp6", "--icmpv6-type", "136", "-j", "ACCEPT"],
    ["-i", br, "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"],
    ["-i", br, "-j", "REJECT", "--reject-with", "icmp6-port-unreachable"],
  ];
  const isolation = [
    ["-i", br, "-o", br, "-j", "ACCEPT"],
    ...(internet
      ? [
          ["-o", br, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"],
          ["-i", br, "-o", ANY_CLUSTER_BRIDGE, "-j", "DROP"],
          ...t.internalRanges.map((cidr) => ["-i", br, "-d", cidr, "-j", "DROP"]),
          ["-i", br, "-d", LINK_LOCAL, "-j", "REJECT", "--reject-with", "icmp-admin-prohibited"],
          ["-i", br, "-j", "ACCEPT"],
        ]
      : []),
    ["-i", br, "-j", "DROP"],
    ["-o", br, "-j", "DROP"],
  ];
  const nat = internet
    ? [
        ["-s", t.nodeCidr, "!", "-o", ANY_CLUSTER_BRIDGE, "-j", "MASQUERADE"],
        ["-s", t.clusterCidr, "!", "-o", ANY_CLUSTER_BRIDGE, "-j", "MASQUERADE"],
      ]
    : [];
  return new Map([
    [ISOLATION, isolation],
    [HOST_GUARD, hostGuard],
    [HOST_GUARD_V6, hostGuardV6],
    [EGRESS_NAT, nat],
  ]);
}

function splitRule(line: string): string[] {
  return (line.match(/"[^"]*"|\S+/g) ?? []).map((a) => a.replace(/^"|"$/g, ""));
}

/** The chain's rules (as `-A ...` lines of `-S`) that carry the tag; none when the chain is missing. */
async function taggedRules(chain: Chain, tag: string): Promise<string[]> {
  const listed = await listRules(chain.command, chain.table).catch(() => [] as string[]);
  return taggedLines(listed, chain, tag);
}

/** The chains grouped by the rule set they live in (command and table), in CHAINS' order. */
function chainsByTable(): Chain[][] {
  const groups = new Map<string, Chain[]>();
  for (const chain of CHAINS) {
    const key = `${chain.command} ${chain.table}`;
    groups.set(key, [...(groups.get(key) ?? []), chain]);
  }
  return [...groups.values()];
}

/**
 * Puts the cluster's rules of one table in place, with one listing and one check for the whole
 * table rather than a command per rule (a start ran ~40 iptables processes, ~0.7 s on a 2-core
 * host). Each chain exists and its hook jumps to it (idempotent). When the rules are there
 * already (a start), nothing changes: `-C` lines in an `iptables-restore` check them all and
 * change nothing. Otherwise the cluster's old rules are replaced in one iptables-restore
 * transaction, so that the rules are never half there and never in the wrong order (an ACCEPT
 * after its DROP).
 */
async function syncTable(chains: Chain[], tag: string, wanted: Map<Chain, string[][]>): Promise<void> {
  const { command, table } = chains[0];
  const cmd = [command, "-w", "-t", table] as const;
  const listed = await listRules(command, table);
  for (const chain of chains) {
    if (!listed.includes(`-N ${chain.name}`)) await succeeds(cmd[0], [...cmd.slice(1), "-N", chain.name]);
    if (!listed.includes(`-A ${chain.hook} -j ${chain.name}`)) {
      await run(cmd[0], [...cmd.slice(1), "-I", chain.hook, "1", "-j", chain.name]);
    }
  }
  const current = new Map(chains.map((c) => [c, taggedLines(listed, c, tag)]));
  const desired = new Map(
    chains.map((c) => [c, (wanted.get(c) ?? []).map((r) => [...r, "-m", "comment", "--comment", tag])]),
  );
  const counted = chains.every((c) => current.get(c)!.length === desired.get(c)!.length);
  const checks = chains.flatMap((c) => desired.get(c)!.map((r) => ["-C", c.name, ...r].join(" ")));
  if (counted && (checks.length === 0 || (await restoreSucceeds(command, table, checks)))) return;
  const script = chains.flatMap((c) => [
    ...current.get(c)!.map((l) => l.replace(/^-A /, "-D ")),
    ...desired.get(c)!.map((r) => ["-A", c.name, ...r].join(" ")),
  ]);
  await run(`${command}-restore`, ["-w", "--noflush"], { input: restoreScript(table, script) });
}

function restoreScript(table: string, lines: string[]): string {
  return [`*${table}`, ...lines, "COMMIT", ""].join("\n");
}

/** Runs `-C` lines through iptables-restore: true when every rule exists. Changes nothing. */
async function restoreSucceeds(command: Chain["command"], table: string, checks: string[]): Promise<boolean> {
  return succeeds(`${command}-restore`, ["-w", "--noflush"], { input: restoreScript(table, checks) });
}

/** A table's chains and rules, as `-S` lines (`-N chain`, `-A chain ...`). */
async function listRules(command: Chain["command"], table: string): Promise<string[]> {
  const { stdout } = await run(command, ["-w", "-t", table, "-S"]);
  return stdout.split("\n");
}

/** The chain's rules (as `-A ...` lines of `-S`) that carry the tag. */
function taggedLines(listed: string[], chain: Chain, tag: string): string[] {
  return listed.filter((line) => line.startsWith(`-A ${chain.name} `) && splitRule(line).includes(tag));
}

export async function installClusterFirewall(clusterId: string, target: FirewallTarget): Promise<void> {
  if (target.egress === "internet") {
    // Forwarding is what lets the host pass a cluster's packets outside at all. Turned on, never
    // off: other software on the host may rely on it by then. Clusters' FORWARD rules above
    // decide what of theirs is forwarded.
    await run("sysctl", ["-qw", "net.ipv4.ip_forward=1"]);
  }
  const wanted = firewallRules(target);
  for (const chains of chainsByTable()) await syncTable(chains, clusterTag(clusterId), wanted);
}

/** Removes every rule tagged with the cluster's id, in every chain; the chains and jumps stay (shared). */
export async function removeClusterFirewall(clusterId: string): Promise<void> {
  const tag = clusterTag(clusterId);
  for (const chain of CHAINS) {
    for (const line of await taggedRules(chain, tag)) {
      await succeeds(chain.command, ["-w", "-t", chain.table, "-D", ...splitRule(line).slice(1)]);
    }
  }
}

/** Which of the host's rule sets still hold a rule of the cluster (IPv4, IPv6). */
export async function leftoverFirewall(clusterId: string): Promise<string[]> {
  const quoted = `"${clusterTag(clusterId)}"`;
  const left: string[] = [];
  for (const command of ["iptables-save", "ip6tables-save"]) {
    const { stdout } = await run(command, []).catch(() => ({ stdout: "" }));
    if (stdout.includes(quoted)) left.push(`${command === "iptables-save" ? "iptables" : "ip6tables"} rules`);
  }
  return left;
}
