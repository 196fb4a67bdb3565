import { DEFAULT_SIZE, newClusterId, type ClusterSpec } from "../core/cluster-spec.js";
import { clusterCgroup, cpuSeconds, pidsIn } from "../runtime/local/cgroups.js";
import { LocalRuntime } from "../runtime/local/local-runtime.js";
import { defaultRelease } from "../setup/catalogue.js";
import { KubeRequester } from "./kube-request.js";
import { compressedSwap } from "../host/compressed-swap.js";
import { meminfo } from "../host/host-budgets.js";
import { componentUse, formatComponents, perClusterByComponent, totalUse } from "./process-memory.js";
import { median } from "./stats.js";

export interface DensityReport {
  clusters: number;
  /** Create → ready of the k-th cluster (index k-1: k-1 already running). */
  createMs: number[];
  idleSeconds: number;
  /** Per cluster, over the idle window: cores used, and private memory (RssAnon) at its end. */
  idleCores: number[];
  privateMiB: number[];
  /** Per cluster at the window's end: in swap (frozen clusters' memory goes to compressed swap in memory). */
  swappedMiB: number[];
  /** What the host's MemAvailable fell by, per cluster: from before the first create to the window's end. */
  memAvailableFallMiB: number;
  /** zram's figures at the window's end when the host has it: pages stored (uncompressed) and the RAM they take. */
  zram?: { storedMiB: number; usedMiB: number };
  /** Per component, averaged over the clusters: memory at the window's end, CPU over it. */
  components: ReturnType<typeof perClusterByComponent>;
  /** Clusters whose apiserver answered GET /version (through their admin credential) at the end. */
  answering: number;
  /** With `freeze`: clusters frozen once ready (the rest had the tenant's work, or failed), and each thaw's time at the end. */
  frozen?: number;
  thawMs?: number[];
}

export interface ConcurrencyReport {
  concurrent: number;
  /** One create alone, just before, as the baseline of the ratio. */
  aloneMs: number;
  /** Each of the concurrent creates, and all of them (the last to be ready). */
  eachMs: number[];
  allMs: number;
}

const spec = (id: string): ClusterSpec => ({
  id,
  kubernetesVersion: defaultRelease().minor,
  privileged: false,
  size: DEFAULT_SIZE,
  workers: 0,
});

async function timedCreate(runtime: LocalRuntime, id: string): Promise<number> {
  const t = Date.now();
  await runtime.provision(spec(id));
  return Date.now() - t;
}

/**
 * Density (issue 15 item 4): N clusters created one after another and left idle; each
 * create timed against how many already run, then CPU and private memory per idle cluster
 * over a window, and whether each still answers. Everything the bench made is destroyed.
 */
export async function benchDensity(
  n: number,
  idleSeconds: number,
  log: (l: string) => void,
  options: { freeze?: boolean } = {},
): Promise<DensityReport> {
  const runtime = new LocalRuntime();
  const ids: string[] = [];
  const report: DensityReport = {
    clusters: n,
    createMs: [],
    idleSeconds,
    idleCores: [],
    privateMiB: [],
    swappedMiB: [],
    memAvailableFallMiB: 0,
    components: [],
    answering: 0,
    ...(options.freeze ? { frozen: 0, thawMs: [] } : {}),
  };
  const useOf = async (id: string) => componentUse(await pidsIn(clusterCgroup(id)));
  const availableBefore = await memAvailableMiB();
  try {
    for (let k = 0; k < n; k++) {
      const id = `dens${newClusterId().slice(0, 6)}`;
      ids.push(id);
      report.createMs.push(await timedCreate(runtime, id));
      // What the server does to a cluster nobody talks to (--freeze-after), without the wait.
      const frozen = options.freeze ? (await runtime.freeze(id)).frozen : false;
      if (frozen) report.frozen!++;
      log(
        `  density: cluster ${k + 1}/${n} ready in ${report.createMs[k]} ms (${k} already running)${frozen ? ", frozen" : ""}`,
      );
    }
    const before = await Promise.all(ids.map((id) => cpuSeconds(clusterCgroup(id))));
    const usesBefore = await Promise.all(ids.map(useOf));
    const t = Date.now();
    await new Promise((r) => setTimeout(r, idleSeconds * 1000));
    const after = await Promise.all(ids.map((id) => cpuSeconds(clusterCgroup(id))));
    const window = (Date.now() - t) / 1000;
    const usesAfter = await Promise.all(ids.map(useOf));
    report.memAvailableFallMiB = (availableBefore - (await memAvailableMiB())) / ids.length;
    const swap = await compressedSwap();
    if (swap.state === "on")
      report.zram = { storedMiB: swap.storedBytes / 2 ** 20, usedMiB: swap.memoryUsedBytes / 2 ** 20 };
    report.components = perClusterByComponent(usesBefore, usesAfter, window);
    for (let i = 0; i < ids.length; i++) {
      report.idleCores.push(((after[i] ?? 0) - (before[i] ?? 0)) / window);
      report.privateMiB.push(totalUse(usesAfter[i]).privateMiB);
      report.swappedMiB.push(totalUse(usesAfter[i]).swappedMiB);
      if (options.freeze) {
        const t0 = Date.now();
        await runtime.thaw(ids[i]);
        report.thawMs!.push(Date.now() - t0);
      }
      const admin = (await runtime.credentials(ids[i])).adminKubeconfig;
      const status = await new KubeRequester(admin).get("/version", 10_000).catch(() => 0);
      if (status === 200) report.answering++;
    }
  } finally {
    for (const id of ids) await runtime.destroy(id).catch(() => undefined);
  }
  return report;
}

/** N creates at once (the host's capacity permitting) against one create alone, in the same run. */
export async function benchConcurrent(n: number, log: (l: string) => void): Promise<ConcurrencyReport> {
  const runtime = new LocalRuntime();
  const ids: string[] = [];
  try {
    const alone = `conc${newClusterId().slice(0, 6)}`;
    ids.push(alone);
    const aloneMs = await timedCreate(runtime, alone);
    await runtime.destroy(alone);
    log(`  concurrent: one create alone ${aloneMs} ms; now ${n} at once`);
    const batch = Array.from({ length: n }, () => `conc${newClusterId().slice(0, 6)}`);
    ids.push(...batch);
    const t = Date.now();
    const eachMs = await Promise.all(batch.map((id) => timedCreate(runtime, id)));
    return { concurrent: n, aloneMs, eachMs, allMs: Date.now() - t };
  } finally {
    for (const id of ids) await runtime.destroy(id).catch(() => undefined);
  }
}

const memAvailableMiB = async () => (await meminfo()).available / 2 ** 20;

export function formatDensity(r: DensityReport): string {
  const first = r.createMs.slice(0, Math.max(1, Math.floor(r.clusters / 4)));
  const last = r.createMs.slice(-Math.max(1, Math.floor(r.clusters / 4)));
  return (
    `  density: ${r.clusters} idle clusters${r.frozen !== undefined ? ` (${r.frozen} frozen once ready)` : ""}, ${r.answering} answering at the end\n` +
    (r.thawMs?.length
      ? `    thaw at the end (kubelet leases renewed, controller manager continued): p50 ${median(r.thawMs)} ms, max ${Math.max(...r.thawMs)} ms\n`
      : "") +
    `    create → ready, first quarter p50 ${(median(first) / 1000).toFixed(2)} s, last quarter p50 ${(median(last) / 1000).toFixed(2)} s (${(median(last) / median(first)).toFixed(2)}×)\n` +
    `    per idle cluster over ${r.idleSeconds} s: CPU p50 ${median(r.idleCores).toFixed(3)} core (target ≤ 0.015), private memory p50 ${median(r.privateMiB).toFixed(0)} MiB (target ≤ 200)\n` +
    (median(r.swappedMiB) > 0
      ? `    in swap p50 ${median(r.swappedMiB).toFixed(0)} MiB per cluster` +
        (r.zram
          ? ` (zram: ${r.zram.storedMiB.toFixed(0)} MiB stored in ${r.zram.usedMiB.toFixed(0)} MiB, ${(r.zram.storedMiB / Math.max(1, r.zram.usedMiB)).toFixed(1)}×)`
          : "") +
        "\n"
      : "") +
    `    MemAvailable fell ${r.memAvailableFallMiB.toFixed(0)} MiB per cluster (everything it holds in RAM, page cache and compressed swap included)\n` +
    `    by component, per cluster (memory at the end, CPU over the window):\n` +
    formatComponents(r.components, "      ")
  );
}

export function formatConcurrency(r: ConcurrencyReport): string {
  return (
    `  ${r.concurrent} concurrent creates → all ready ${(r.allMs / 1000).toFixed(2)} s, each p50 ${(median(r.eachMs) / 1000).toFixed(2)} s; ` +
    `one alone ${(r.aloneMs / 1000).toFixed(2)} s (all ${(r.allMs / r.aloneMs).toFixed(2)}× one; target ≤ 4×)\n`
  );
}
