import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { cpus } from "node:os";
import { join } from "node:path";
import { CLUSTERS_CGROUP, systemCgroup } from "../runtime/local/cgroups.js";
import { MAX_CLUSTER_INDEX } from "../runtime/local/network.js";
import { TempkubeError } from "../util/errors.js";
import { estimateCapacity, roomRefusals, type CapacityEstimate, type ResourceBudget } from "./capacity.js";
import {
  clusterFootprint,
  FROZEN_COMPRESSED_MEMORY_BYTES,
  IDLE_CLUSTER,
  WATCHES_PER_RUNNING_CLUSTER,
  type Footprint,
} from "./cluster-footprint.js";
import { wantedSysctls, readSysctl, sysctlFix } from "./host-sysctls.js";
import { hostInotifyUse } from "./inotify.js";

/** Memory kept for the host itself (the server, builds, page cache) when counting capacity. */
export const HOST_MEMORY_RESERVE = 2 * 2 ** 30;
/** The share of the cores idle clusters may keep busy: the rest is for creates and for users' work. */
export const IDLE_CPU_SHARE = 0.75;

/** Which footprint figure each budget is measured against (for a cluster of several nodes too). */
export type BudgetFigure = keyof Footprint;

export interface HostBudgets {
  budgets: (ResourceBudget & { figure: BudgetFigure })[];
  /** tempkube clusters up now (their components' cgroup has processes), whatever their data dir. */
  running: number;
}

/** The one IPv4 neighbour table's entry count (same on every per-CPU line of the file). */
async function neighbourEntries(): Promise<number | undefined> {
  const text = await readFile("/proc/net/stat/arp_cache", "utf8").catch(() => "");
  const first = text.split("\n")[1]?.trim().split(/\s+/)[0];
  return first ? parseInt(first, 16) : undefined;
}

/** MemTotal and MemAvailable, in bytes (also what the benches report memory by). */
export async function meminfo(): Promise<{ total: number; available: number }> {
  const text = await readFile("/proc/meminfo", "utf8");
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? 0) * 1024;
  return { total: kib("MemTotal"), available: kib("MemAvailable") };
}

/** Threads (tasks) on the host: the denominator of /proc/loadavg's fourth field. */
async function tasksOnHost(): Promise<number> {
  const text = await readFile("/proc/loadavg", "utf8");
  return Number(/\d+\/(\d+)/.exec(text)?.[1] ?? 0);
}

/** Clusters up now: `/tempkube/<id>/system` holds their components, in any data dir. */
export async function runningClusters(): Promise<number> {
  const hierarchy = ["/sys/fs/cgroup/pids", "/sys/fs/cgroup/memory", "/sys/fs/cgroup"].find((h) =>
    existsSync(join(h, CLUSTERS_CGROUP)),
  );
  if (!hierarchy) return 0;
  let n = 0;
  for (const id of await readdir(join(hierarchy, CLUSTERS_CGROUP)).catch(() => [] as string[])) {
    const procs = await readFile(join(hierarchy, systemCgroup(id), "cgroup.procs"), "utf8").catch(() => "");
    if (procs.trim()) n++;
  }
  return n;
}

/** Address ranges taken: one bridge `tkb<index>` per cluster, running or stopped-with-network. */
async function bridgesInUse(): Promise<number> {
  return (await readdir("/sys/class/net").catch(() => [] as string[])).filter((n) => /^tkb\d+$/.test(n)).length;
}

/**
 * What this host has of every resource a cluster takes, what is in use now, and one idle
 * cluster's share. Reading it costs one find(1) over every open file on the host (inotify
 * instances have no counter): ~15-25 ms with a few clusters up.
 */
export async function readHostBudgets(): Promise<HostBudgets> {
  // The fix names the value setup sets; for a limit already past it, or one setup leaves
  // alone (threads-max follows the memory), twice the current one.
  const wanted = new Map((await wantedSysctls().catch(() => [])).map((s) => [s.key, s.value]));
  const fix = (key: string, current: number) =>
    sysctlFix(key, (wanted.get(key) ?? 0) > current ? wanted.get(key)! : 2 * current);
  const [running, mem, inotify, tasks, bridges, neighbours] = await Promise.all([
    runningClusters(),
    meminfo(),
    hostInotifyUse(),
    tasksOnHost(),
    bridgesInUse(),
    neighbourEntries(),
  ]);
  const budgets: HostBudgets["budgets"] = [];
  const limit = (key: string, value: number | undefined, inUse: number | undefined, figure: BudgetFigure) => {
    if (value === undefined || inUse === undefined) return;
    budgets.push({
      name: key,
      kind: "limit",
      total: value,
      inUse,
      reserve: 0,
      perCluster: IDLE_CLUSTER[figure],
      unit: "",
      fix: fix(key, value),
      figure,
    });
  };
  const cores = cpus().length;
  budgets.push({
    name: "memory",
    kind: "estimate",
    total: mem.total,
    inUse: mem.total - mem.available,
    reserve: HOST_MEMORY_RESERVE,
    perCluster: IDLE_CLUSTER.memoryBytes,
    unit: "bytes",
    figure: "memoryBytes",
  });
  budgets.push({
    name: "CPU at idle",
    kind: "estimate",
    total: cores * IDLE_CPU_SHARE,
    inUse: running * IDLE_CLUSTER.cpuCores,
    reserve: 0,
    perCluster: IDLE_CLUSTER.cpuCores,
    unit: "cores",
    figure: "cpuCores",
  });
  limit(
    "fs.inotify.max_user_instances",
    await readSysctl("fs.inotify.max_user_instances"),
    inotify.instances,
    "inotifyInstances",
  );
  limit(
    "fs.inotify.max_user_watches",
    await readSysctl("fs.inotify.max_user_watches"),
    inotify.watches,
    "inotifyWatches",
  );
  const watches = budgets.find((b) => b.name === "fs.inotify.max_user_watches");
  if (watches) watches.perRunningCluster = WATCHES_PER_RUNNING_CLUSTER;
  limit("kernel.pid_max", await readSysctl("kernel.pid_max"), tasks, "tasks");
  limit("kernel.threads-max", await readSysctl("kernel.threads-max"), tasks, "tasks");
  const fileNr = await readSysctl("fs.file-nr");
  limit("fs.file-max", await readSysctl("fs.file-max"), fileNr, "openFiles");
  limit(
    "net.netfilter.nf_conntrack_max",
    await readSysctl("net.netfilter.nf_conntrack_max"),
    await readSysctl("net.netfilter.nf_conntrack_count"),
    "conntrackEntries",
  );
  limit(
    "net.ipv4.neigh.default.gc_thresh3",
    await readSysctl("net.ipv4.neigh.default.gc_thresh3"),
    neighbours,
    "neighbours",
  );
  budgets.push({
    name: "address ranges",
    kind: "limit",
    total: MAX_CLUSTER_INDEX,
    inUse: bridges,
    reserve: 0,
    perCluster: 1,
    unit: "",
    figure: "addressRanges",
  });
  return { budgets, running };
}

/**
 * Fails fast, before anything is made, when one more cluster of `nodes` nodes cannot boot:
 * a kernel limit or the memory has less than its share free. Without this the cluster's
 * kubelet dies on `inotify_init: too many open files` and the create waits out its whole
 * ready timeout (issue 15: the 8th cluster on a fresh host, after 182 s).
 */
export async function refuseUnlessRoomFor(nodes: number): Promise<void> {
  const { budgets, running } = await readHostBudgets();
  const need = clusterFootprint(nodes);
  // Each of its kubelets watches the running clusters' cgroups too (WATCHES_PER_RUNNING_CLUSTER).
  const refusals = roomRefusals(budgets, (b) => need[b.figure] + (b.perRunningCluster ?? 0) * nodes * running);
  if (refusals.length) {
    throw new TempkubeError(
      "host",
      `this host has no room for another cluster of ${nodes} node${nodes === 1 ? "" : "s"}: ${refusals.join("; ")}`,
    );
  }
}

/** How clusters are held when idle, which changes what bounds the host: see withIdleClustersFrozen. */
export interface IdleHolding {
  /** The server freezes idle clusters (`--freeze-after`). */
  idleClustersFrozen?: boolean;
  /** ... and pushes their memory into compressed swap in memory (host/compressed-swap.ts). */
  frozenCompressed?: boolean;
}

/** How many clusters this host holds now, and what bounds it (see capacity.ts). */
export async function estimateHostCapacity(holding: IdleHolding = {}): Promise<CapacityEstimate> {
  const { budgets, running } = await readHostBudgets();
  return estimateCapacity(holding.idleClustersFrozen ? withIdleClustersFrozen(budgets, holding) : budgets, running);
}

/**
 * The budgets as they stand when the server freezes idle clusters (`--freeze-after`): those
 * use no CPU, so idle CPU bounds nothing (their memory and kernel objects stay, and count).
 * With their memory compressed too, a held cluster takes FROZEN_COMPRESSED_MEMORY_BYTES, and
 * the memory keeps room for as many clusters awake at once as the idle CPU would allow, each
 * with its whole footprint: past that many awake, CPU is what is short anyway.
 */
export function withIdleClustersFrozen(
  budgets: HostBudgets["budgets"],
  holding: Pick<IdleHolding, "frozenCompressed"> = {},
): HostBudgets["budgets"] {
  const cpu = budgets.find((b) => b.figure === "cpuCores");
  const kept = budgets.filter((b) => b.figure !== "cpuCores");
  if (!holding.frozenCompressed || !cpu) return kept;
  const awakeAtOnce = Math.floor(cpu.total / cpu.perCluster);
  return kept.map((b) =>
    b.figure === "memoryBytes"
      ? {
          ...b,
          name: "memory (idle clusters compressed)",
          perCluster: FROZEN_COMPRESSED_MEMORY_BYTES,
          reserve: b.reserve + awakeAtOnce * (b.perCluster - FROZEN_COMPRESSED_MEMORY_BYTES),
        }
      : b,
  );
}
