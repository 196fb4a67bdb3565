import { readdir, readFile } from "node:fs/promises";
import { inotifyUseOf } from "./inotify.js";

/** What a cluster takes of each host-wide resource that caps how many clusters a host holds. */
export interface Footprint {
  /** Fall of MemAvailable while it runs. */
  memoryBytes: number;
  /** CPU it keeps busy when idle. */
  cpuCores: number;
  /** Against fs.inotify.max_user_instances (root's, shared by every cluster). */
  inotifyInstances: number;
  /** Against fs.inotify.max_user_watches. */
  inotifyWatches: number;
  /** Threads; each takes a PID (kernel.pid_max) and counts against kernel.threads-max. */
  tasks: number;
  /** Open files, against fs.file-max. */
  openFiles: number;
  /** Entries in the host namespace's conntrack table (bridged traffic is tracked there too). */
  conntrackEntries: number;
  /** Entries in the kernel's one IPv4 neighbour table, shared by every network namespace. */
  neighbours: number;
  /** Bridges and /24s of 172.30.0.0/16 (one per cluster). */
  addressRanges: number;
}

/**
 * One idle cluster of one node, size 1-small, Kubernetes 1.34, measured on a 2-core,
 * 24 GiB, cgroup v1 machine (2026-12-01: five clusters made one after another, each
 * measured 15 s after ready, then a minute of idling; footprint.e2e.test.ts measures the
 * countable figures again and fails when a cluster takes more than this says):
 * - inotify instances and watches, from /proc/<pid>/fd and fdinfo of the cluster's
 *   processes (inotify.ts): 19 instances (kube-controller-manager 6, kubelet 6,
 *   kube-apiserver 4, kube-scheduler, containerd, kube-proxy 1 each), 125-130 watches (the
 *   kubelet's ~105 vary with the host's other cgroups);
 * - tasks: 112-117 threads (host-wide: +115-122); open files: 391 fds (file-nr: +406-457);
 * - neighbours: +7 entries each; conntrack: the host namespace's count did not grow (9-13);
 * - memory: MemAvailable fell 340 MiB per cluster over the five (140-451 each);
 * - CPU: the cluster cgroups' cpuacct.usage over a minute, five idling: 0.051-0.059 core
 *   each (0.068 for one alone).
 * Rounded up, so capacity errs on the safe side. Measure again (footprint.e2e.test.ts
 * prints the figures) when the runtime changes what a cluster runs.
 *
 * Per component (2026-12-01, one idle cluster alone, the machine under other agents' load;
 * CPU from /proc/<pid>/stat utime+stime, medians of 3 × 60 s after 40 s idle; private =
 * RssAnon; two runs): kube-apiserver 0.024 core, 163-166 MiB; kine 0.014, 18;
 * kube-controller-manager 0.010, 41-50; kubelet 0.009, 25-27; containerd 0.002-0.003, 14-15;
 * kube-scheduler 0.0015, 13; CoreDNS 0.0013, 11; kube-proxy 0.0003, 11-12;
 * cluster-controllers 0.0002, 6; local-path-provisioner 0.0001, 6.5; two containerd shims
 * 0.0005, 5.5; eight bash supervisors 0, 2.3; whole cgroup 0.061-0.065 core, 320-329 MiB.
 * CPU profiles: most of it is fixed-period loops hard-coded upstream: the apiserver's
 * per-resource cacher bookmark timers (1 s each) and kine's progress notifications; kine's
 * 1 s poll and (v0.16.4, measured here) 100 ms progress loop per watch stream; the kubelet's
 * pod cleanup (2 s), volume reconciler (100 ms) and PLEG relist (1 s). Requests at idle
 * are ~1 a second. kine v0.17.5 dropped the 100 ms loop: it answers a progress request
 * when it comes (pkg/server/watch.go:417-449) and notifies each synced watch every
 * --watch-progress-notify-interval (5 s; watch.go:44-47); its poll stays 1 s
 * (--datastore-poll-interval, pkg/logstructured/sqllog/sql.go:548). Measured once on a 1.37
 * cluster (one 60 s sample after 40 s idle, not an A/B against v0.16.4): 0.011 core, 22 MiB.
 */
export const IDLE_CLUSTER: Footprint = {
  memoryBytes: 360 * 2 ** 20,
  cpuCores: 0.07,
  // 23 measured on 1.37 with containerd 2 (1.34 on containerd 1.6: 19); rounded up.
  inotifyInstances: 26,
  inotifyWatches: 150,
  // 112-117 threads on 1.34 with containerd 1.6; 123 and 136 on 1.37 with containerd 2.
  tasks: 150,
  openFiles: 500,
  conntrackEntries: 5,
  neighbours: 8,
  addressRanges: 1,
};

/**
 * RAM an idle cluster takes once frozen and compressed (freeze.ts, host/compressed-swap.ts):
 * what stays resident, page cache included, plus its pages in zram, compressed. Measured
 * 2026-12-02 on 1.37, 1-small, lz4 (`bench --density 4 --freeze --idle 60`, beside a
 * conformance run): MemAvailable fell 87 MiB per cluster (against ~340 awake); 344 MiB of
 * each in swap, 4.5× compressed; resident private memory 2 MiB. Rounded up.
 */
export const FROZEN_COMPRESSED_MEMORY_BYTES = 120 * 2 ** 20;

/**
 * inotify watches a cluster takes on top for each cluster already running. cAdvisor in
 * every kubelet watches every cgroup directory on the host, in every hierarchy
 * (cadvisor container/raw/watcher.go: watchDirectory recurses from each hierarchy's root),
 * its own cluster's and all the others': ~71 directories per idle cluster on cgroup v1, so
 * a new cluster's kubelet watches the others' 71 each and their kubelets watch its 71.
 * Measured: host-wide watches 125, 392, 801, 1352, 2045 for 1-5 clusters, i.e.
 * 125·n + 71·n·(n-1); 120 idle clusters take ~1.03 M watches, and every pod adds its
 * cgroups to every kubelet's watches.
 */
export const WATCHES_PER_RUNNING_CLUSTER = 150;

/**
 * What each worker node adds: its containerd, kubelet and kube-proxy (measured on a
 * two-node cluster: +8 inotify instances, +153 watches, +28 threads, +68 fds, +7
 * neighbours, ~+40 conntrack entries in the host namespace for the traffic between nodes,
 * which crosses the host's bridge). Memory and CPU are those processes' share at idle.
 */
export const EXTRA_NODE: Footprint = {
  memoryBytes: 120 * 2 ** 20,
  cpuCores: 0.03,
  // 8 measured with containerd 1.6; containerd 2 takes one more than 1.6 did.
  inotifyInstances: 10,
  inotifyWatches: 160,
  tasks: 40,
  openFiles: 100,
  conntrackEntries: 50,
  neighbours: 8,
  addressRanges: 0,
};

/** A cluster of `nodes` nodes. */
export function clusterFootprint(nodes: number): Footprint {
  const extra = Math.max(0, nodes - 1);
  const out = { ...IDLE_CLUSTER };
  for (const k of Object.keys(out) as (keyof Footprint)[]) out[k] += extra * EXTRA_NODE[k];
  return out;
}

/** The countable part of a footprint, of the given processes (e.g. a cluster's cgroup). */
export async function processFootprint(
  pids: number[],
): Promise<Pick<Footprint, "inotifyInstances" | "inotifyWatches" | "tasks" | "openFiles">> {
  const inotify = await inotifyUseOf(pids);
  let tasks = 0;
  let openFiles = 0;
  for (const pid of pids) {
    const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
    tasks += Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    openFiles += (await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])).length;
  }
  return { inotifyInstances: inotify.instances, inotifyWatches: inotify.watches, tasks, openFiles };
}
