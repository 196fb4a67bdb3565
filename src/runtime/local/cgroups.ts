import { existsSync } from "node:fs";
import { readdir, readFile, rmdir, writeFile, mkdir } from "node:fs/promises";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { SIZE_PRESETS, type ClusterSpec } from "../../core/cluster-spec.js";
import { hostCgroupVersion } from "../../host/cgroup-version.js";

/**
 * The cluster's cgroup, `/tempkube/<id>`, in every hierarchy (cgroup v1 mounts one per
 * controller). Every process of the cluster lives below it: components in `system`,
 * pods below the kubelets' cgroupRoot `<node>`. That makes "stop every process",
 * "uses no memory" and the size preset's limits one place each.
 */
const ROOT = "/sys/fs/cgroup";

/** Decided as the kubelet decides it (host/cgroup-version.ts), so tempkube and its kubelets agree. */
export function isCgroupV2(): boolean {
  return hostCgroupVersion() === "v2";
}

/** Mount points of the hierarchies a cluster's cgroup is made in. */
export async function hierarchies(): Promise<string[]> {
  if (isCgroupV2()) return [ROOT];
  const entries = await readdir(ROOT, { withFileTypes: true });
  return entries
    .filter((e) => (e.isDirectory() || e.isSymbolicLink()) && !e.name.includes(","))
    .map((e) => join(ROOT, e.name))
    .filter((p) => existsSync(join(p, "cgroup.procs")));
}

/** The parent of every cluster's cgroup, whatever its data dir. */
export const CLUSTERS_CGROUP = "/tempkube";

export function clusterCgroup(clusterId: string): string {
  return `${CLUSTERS_CGROUP}/${clusterId}`;
}

/** Where the cluster's own processes (control plane, containerd, kubelets, kube-proxies) run. */
export function systemCgroup(clusterId: string): string {
  return `${clusterCgroup(clusterId)}/system`;
}

/** The kubelet's cgroupRoot for node k: pods of each node under their own subtree of the cluster's cgroup. */
export function kubeletCgroupRoot(clusterId: string, k: number): string {
  return `${clusterCgroup(clusterId)}/${k === 0 ? "cp" : `w${k}`}`;
}

/** The cluster's cgroups, with the size preset's limits. Safe to run again (every start does). */
export async function setupClusterCgroups(spec: ClusterSpec): Promise<void> {
  await ensureCgroup(systemCgroup(spec.id));
  for (let k = 0; k <= spec.workers; k++) await ensureCgroup(kubeletCgroupRoot(spec.id, k));
  const limits = SIZE_PRESETS[spec.size];
  // Enforced where the host can: a preset larger than the host is capped by the host anyway.
  await setMemoryLimit(clusterCgroup(spec.id), Math.min(limits.memoryBytes, totalmem()));
  await keepFromSwap(clusterCgroup(spec.id));
  await setCpuLimit(clusterCgroup(spec.id), limits.cpus, cpus().length);
}

/** Creates the cgroup path in each hierarchy (cpuset needs cpus/mems before tasks join). */
export async function ensureCgroup(path: string): Promise<void> {
  for (const h of await hierarchies()) {
    let current = h;
    for (const part of path.split("/").filter(Boolean)) {
      const parent = current;
      current = join(current, part);
      if (!existsSync(current)) await mkdir(current);
      if (h.endsWith("/cpuset")) {
        for (const f of ["cpuset.cpus", "cpuset.mems"]) {
          const mine = (await readFile(join(current, f), "utf8")).trim();
          if (!mine) await writeFile(join(current, f), (await readFile(join(parent, f), "utf8")).trim());
        }
      }
    }
  }
}

/**
 * The memory limit of the subtree; on cgroup v1 memory+swap gets the same limit, so that with
 * swap on the host (compressed swap for frozen clusters, host/compressed-swap.ts) nothing in
 * the cluster holds more than its limit in memory and swap together. v1 refuses a memory
 * limit above memsw's and a memsw limit below memory's, hence the order.
 */
export async function setMemoryLimit(path: string, bytes: number): Promise<void> {
  if (isCgroupV2()) {
    const file = join(ROOT, path, "memory.max");
    if (existsSync(file)) await writeFile(file, String(bytes));
    return;
  }
  const dir = join(ROOT, "memory", path);
  const memory = join(dir, "memory.limit_in_bytes");
  const memsw = join(dir, "memory.memsw.limit_in_bytes");
  if (!existsSync(memory)) return;
  if (!existsSync(memsw)) return writeFile(memory, String(bytes)); // swap accounting off: nothing to keep in step
  const raising = bytes > Number((await readFile(memsw, "utf8")).trim());
  for (const file of raising ? [memsw, memory] : [memory, memsw]) await writeFile(file, String(bytes));
}

/** Every memory cgroup at and below `dir` (a v1 hierarchy's directory), parents first. */
async function memoryCgroupsUnder(dir: string): Promise<string[]> {
  const found = [dir];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (e.isDirectory()) found.push(...(await memoryCgroupsUnder(join(dir, e.name))));
  }
  return found;
}

/** memory.swappiness of every cgroup of the v1 subtree (children copy their parent's when made). */
async function setSwappiness(dir: string, value: number): Promise<void> {
  for (const d of await memoryCgroupsUnder(dir)) {
    // A cgroup removed meanwhile (a pod's) has nothing left to keep.
    await writeFile(join(d, "memory.swappiness"), String(value)).catch(() => undefined);
  }
}

/**
 * Nothing of a running cluster goes to swap: cgroup v1 swappiness 0 on the subtree (reclaim
 * at a memory cgroup's limit with swappiness 0 takes file pages only, mm/vmscan.c
 * get_scan_count, so a pod past its limit is OOM-killed as on a host without swap; cgroups
 * made later copy it), v2 `memory.swap.max` 0. Done on every boot and every thaw.
 */
export async function keepFromSwap(path: string): Promise<void> {
  if (isCgroupV2()) {
    const file = join(ROOT, path, "memory.swap.max");
    if (existsSync(file)) await writeFile(file, "0");
    return;
  }
  const dir = join(ROOT, "memory", path);
  if (!existsSync(dir)) return;
  // The parent of every cluster's cgroup too: a cluster's cgroup copies it when made.
  await writeFile(join(ROOT, "memory", CLUSTERS_CGROUP, "memory.swappiness"), "0").catch(() => undefined);
  await setSwappiness(dir, 0);
}

/**
 * Pushes the subtree's memory out to swap (for a frozen cluster, whose pages nothing touches
 * until the thaw): v1 `memory.force_empty` reclaims every page it can without changing the
 * limit (mm/memcontrol-v1.c mem_cgroup_force_empty, which stops after a few passes without
 * progress), with swappiness 100 meanwhile so that anonymous pages go too; v2 `memory.reclaim`
 * with swap allowed meanwhile. Then the subtree is kept from swap again (keepFromSwap), which
 * a thaw also does at once. File pages (binaries, logs, the datastore) are dropped. Returns
 * the bytes of the subtree in swap afterwards.
 */
export async function swapOut(path: string): Promise<number> {
  if (isCgroupV2()) {
    const dir = join(ROOT, path);
    if (!existsSync(join(dir, "memory.reclaim"))) return 0;
    await writeFile(join(dir, "memory.swap.max"), "max");
    try {
      const current = (await readFile(join(dir, "memory.current"), "utf8")).trim();
      // EAGAIN when it reclaimed less than asked: what it did reclaim stays reclaimed.
      await writeFile(join(dir, "memory.reclaim"), current).catch(() => undefined);
    } finally {
      await keepFromSwap(path);
    }
    return Number((await readFile(join(dir, "memory.swap.current"), "utf8").catch(() => "0")).trim());
  }
  const dir = join(ROOT, "memory", path);
  if (!existsSync(join(dir, "memory.force_empty"))) return 0;
  await setSwappiness(dir, 100);
  try {
    await writeFile(join(dir, "memory.force_empty"), "0");
  } finally {
    await keepFromSwap(path);
  }
  const stat = await readFile(join(dir, "memory.stat"), "utf8").catch(() => "");
  return Number(/^total_swap (\d+)$/m.exec(stat)?.[1] ?? 0);
}

/** Every pid in the subtree, from the pids (or memory) hierarchy. */
export async function pidsIn(path: string): Promise<number[]> {
  const base = isCgroupV2() ? join(ROOT, path) : join(ROOT, existsSync(join(ROOT, "pids")) ? "pids" : "memory", path);
  const pids: number[] = [];
  const walk = async (dir: string): Promise<void> => {
    const procs = await readFile(join(dir, "cgroup.procs"), "utf8").catch(() => "");
    for (const l of procs.split("\n")) if (l.trim()) pids.push(Number(l));
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isDirectory()) await walk(join(dir, e.name));
  };
  if (existsSync(base)) await walk(base);
  return pids;
}

/** Sends SIGKILL to every process in the subtree until it is empty (new forks included). */
export async function killAll(path: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = await pidsIn(path);
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        /* already gone */
      }
    }
    if (Date.now() > deadline) throw new Error(`processes survive SIGKILL in cgroup ${path}: ${pids.join(", ")}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Removes the subtree's cgroups bottom-up in every hierarchy; `keepRoot` leaves `path` itself. */
export async function removeCgroup(path: string, keepRoot = false): Promise<void> {
  const rm = async (dir: string, isRoot: boolean): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isDirectory()) await rm(join(dir, e.name), false);
    if (!isRoot || !keepRoot) {
      for (let attempt = 0; ; attempt++) {
        try {
          await rmdir(dir);
          break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === "ENOENT") break;
          if (attempt > 40) throw err;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    }
  };
  for (const h of await hierarchies()) {
    if (existsSync(join(h, path))) await rm(join(h, path), true);
  }
}

/** Hierarchies in which the subtree still exists (for leak checks). */
export async function leftoverCgroups(path: string): Promise<string[]> {
  return (await hierarchies()).filter((h) => existsSync(join(h, path))).map((h) => join(h, path));
}

/** Resident memory of the subtree (memory.usage minus page cache where the kernel reports it). */
export async function memoryUsage(path: string): Promise<{ rssBytes: number; usageBytes: number } | undefined> {
  const dir = isCgroupV2() ? join(ROOT, path) : join(ROOT, "memory", path);
  const stat = await readFile(join(dir, "memory.stat"), "utf8").catch(() => undefined);
  if (!stat) return undefined;
  const get = (k: string) => Number(stat.match(new RegExp(`^${k} (\\d+)`, "m"))?.[1] ?? 0);
  const usageFile = isCgroupV2() ? "memory.current" : "memory.usage_in_bytes";
  const usageBytes = Number((await readFile(join(dir, usageFile), "utf8")).trim());
  const rssBytes = isCgroupV2() ? get("anon") : get("total_rss");
  return { rssBytes, usageBytes };
}

/** CPU bandwidth limit of `cpus` cores (no limit when the host has no more than that). */
export async function setCpuLimit(path: string, cpus: number, hostCpus: number): Promise<void> {
  const period = 100_000;
  const quota = cpus >= hostCpus ? -1 : Math.round(cpus * period);
  if (isCgroupV2()) {
    const file = join(ROOT, path, "cpu.max");
    if (existsSync(file)) await writeFile(file, quota < 0 ? `max ${period}` : `${quota} ${period}`);
    return;
  }
  const dir = join(ROOT, "cpu", path);
  if (!existsSync(join(dir, "cpu.cfs_quota_us"))) return;
  await writeFile(join(dir, "cpu.cfs_period_us"), String(period));
  await writeFile(join(dir, "cpu.cfs_quota_us"), String(quota));
}

/** CPU time the subtree has used, in seconds (cgroup v2 cpu.stat usage_usec; v1 cpuacct.usage). */
export async function cpuSeconds(path: string): Promise<number | undefined> {
  if (isCgroupV2()) {
    const stat = await readFile(join(ROOT, path, "cpu.stat"), "utf8").catch(() => undefined);
    const usec = stat && /^usage_usec (\d+)/m.exec(stat)?.[1];
    return usec ? Number(usec) / 1e6 : undefined;
  }
  const ns = await readFile(join(ROOT, "cpuacct", path, "cpuacct.usage"), "utf8").catch(() => undefined);
  return ns === undefined ? undefined : Number(ns.trim()) / 1e9;
}

/**
 * Freezes (or thaws) every process in the subtree, and returns once the kernel says it is
 * done. cgroup v1: the freezer hierarchy's `freezer.state` (FREEZING until every task has
 * stopped; children follow their parent, Documentation/admin-guide/cgroup-v1/freezer-subsystem.rst);
 * v2: `cgroup.freeze`, done when `cgroup.events` says `frozen 1`. A frozen process keeps its
 * memory and uses no CPU; a signal, SIGKILL included, waits until it is thawed.
 */
export async function setFrozen(path: string, frozen: boolean, timeoutMs = 10_000): Promise<void> {
  const v2 = isCgroupV2();
  const dir = v2 ? join(ROOT, path) : join(ROOT, "freezer", path);
  const control = v2 ? join(dir, "cgroup.freeze") : join(dir, "freezer.state");
  if (!existsSync(control)) {
    if (!frozen) return; // nothing there was ever frozen
    throw new Error(`cgroup ${path} has no freezer (${control} is missing)`);
  }
  await writeFile(control, v2 ? (frozen ? "1" : "0") : frozen ? "FROZEN" : "THAWED");
  const deadline = Date.now() + timeoutMs;
  while ((await isFrozen(path)) !== frozen) {
    if (Date.now() > deadline)
      throw new Error(`cgroup ${path} did not become ${frozen ? "frozen" : "thawed"} within ${timeoutMs} ms`);
    // v1 retries the tasks that were busy in the kernel at each write of FROZEN.
    if (frozen && !v2) await writeFile(control, "FROZEN");
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Whether the subtree is frozen now (a cgroup with no freezer, or none at all, is not). */
export async function isFrozen(path: string): Promise<boolean> {
  if (isCgroupV2()) {
    const events = await readFile(join(ROOT, path, "cgroup.events"), "utf8").catch(() => "");
    return /^frozen 1$/m.test(events);
  }
  const state = await readFile(join(ROOT, "freezer", path, "freezer.state"), "utf8").catch(() => "THAWED");
  return state.trim() === "FROZEN";
}
