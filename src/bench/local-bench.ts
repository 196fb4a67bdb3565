import { DEFAULT_SIZE, newClusterId } from "../core/cluster-spec.js";
import { BareApiServer } from "../runtime/local/bare-apiserver.js";
import { clusterCgroup, cpuSeconds, pidsIn } from "../runtime/local/cgroups.js";
import { LocalRuntime } from "../runtime/local/local-runtime.js";
import { defaultRelease, type KubernetesRelease } from "../setup/catalogue.js";
import {
  componentUse,
  formatComponents,
  perClusterByComponent,
  totalUse,
  type ComponentUse,
} from "./process-memory.js";
import { median, percentile } from "./stats.js";

export interface BenchOptions {
  runs: number;
  idleSeconds: number;
  log: (line: string) => void;
}

export interface MemoryFigures {
  /** Sum of VmRSS: counts binaries' pages, which clusters share through the page cache. */
  rssMiB: number;
  /** Sum of RssAnon: memory that is this cluster's alone. */
  privateMiB: number;
  byProcess: Record<string, number>;
}

/** One component of an idle cluster: memory at the end of the idle wait, CPU over its second half. */
export type IdleComponent = ReturnType<typeof perClusterByComponent>[number];

export interface BenchReport {
  runs: number;
  /** The release measured, e.g. "v1.37.2". */
  kubernetesVersion: string;
  baselineReadyMs: number[];
  /** CPU-seconds the bare kine + kube-apiserver used to /readyz, and a cluster's processes to ready. */
  baselineCpuSeconds: number[];
  createCpuSeconds: number[];
  startCpuSeconds: number[];
  createReadyMs: number[];
  startReadyMs: number[];
  stopMs: number[];
  createSteps: Record<string, number>;
  startSteps: Record<string, number>;
  idleMemory: MemoryFigures;
  /** The idle cluster by component (first run), and the window its CPU was measured over. */
  idleComponents: IdleComponent[];
  idleCpuWindowSeconds: number;
  baselineMemory: MemoryFigures;
}

function memoryOf(use: Record<string, ComponentUse>): MemoryFigures {
  const total = totalUse(use);
  return {
    rssMiB: total.rssMiB,
    privateMiB: total.privateMiB,
    byProcess: Object.fromEntries(Object.entries(use).map(([name, c]) => [name, c.rssMiB])),
  };
}

function medianSteps(all: Record<string, number>[]): Record<string, number> {
  const keys = [...new Set(all.flatMap((t) => Object.keys(t)))];
  return Object.fromEntries(keys.map((k) => [k, median(all.map((t) => t[k] ?? 0))]));
}

/**
 * Cold create → ready, stop → start → ready and idle memory of real clusters, each run
 * paired with the baseline (a bare kine + kube-apiserver to /readyz) measured in the same
 * loop, so the figures read as ratios on a noisy machine.
 */
export async function benchLocal(options: BenchOptions): Promise<BenchReport> {
  return (await benchReleases(options, [defaultRelease()]))[0];
}

/**
 * The same figures for several releases, interleaved run by run (release A, release B, A,
 * B, ...), so that a slow minute of a shared machine falls on both: one report per release,
 * in the order given.
 */
export async function benchReleases(options: BenchOptions, releases: KubernetesRelease[]): Promise<BenchReport[]> {
  const runtime = new LocalRuntime();
  const runs = releases.map(() => ({
    report: emptyReport(options.runs),
    createSteps: [] as Record<string, number>[],
    startSteps: [] as Record<string, number>[],
  }));
  for (let i = 0; i < options.runs; i++) {
    for (const [k, release] of releases.entries()) {
      const { report, createSteps, startSteps } = runs[k];
      await benchOnce(runtime, release, i, report, createSteps, startSteps, options);
    }
  }
  return runs.map(({ report, createSteps, startSteps }) => ({
    ...report,
    createSteps: medianSteps(createSteps),
    startSteps: medianSteps(startSteps),
  }));
}

function emptyReport(runs: number): BenchReport {
  return {
    runs,
    kubernetesVersion: "",
    baselineReadyMs: [],
    baselineCpuSeconds: [],
    createCpuSeconds: [],
    startCpuSeconds: [],
    createReadyMs: [],
    startReadyMs: [],
    stopMs: [],
    createSteps: {},
    startSteps: {},
    idleMemory: { rssMiB: 0, privateMiB: 0, byProcess: {} },
    idleComponents: [],
    idleCpuWindowSeconds: 0,
    baselineMemory: { rssMiB: 0, privateMiB: 0, byProcess: {} },
  };
}

async function benchOnce(
  runtime: LocalRuntime,
  release: KubernetesRelease,
  i: number,
  report: BenchReport,
  createSteps: Record<string, number>[],
  startSteps: Record<string, number>[],
  options: BenchOptions,
): Promise<void> {
  report.kubernetesVersion = release.version;
  let t = Date.now();
  const bare = await BareApiServer.start(release);
  report.baselineReadyMs.push(Date.now() - t);
  const bareUse = await componentUse(bare.pids());
  report.baselineCpuSeconds.push(totalUse(bareUse).cpuSeconds);
  if (i === 0) report.baselineMemory = memoryOf(bareUse);
  await bare.stop();

  const id = `bench${newClusterId().slice(0, 5)}`;
  try {
    t = Date.now();
    const made = await runtime.provision({
      id,
      kubernetesVersion: release.minor,
      privileged: false,
      size: DEFAULT_SIZE,
      workers: 0,
    });
    report.createReadyMs.push(Date.now() - t);
    // The cluster's cgroup holds every process of it (pods too), none of tempkube's own.
    report.createCpuSeconds.push((await cpuSeconds(clusterCgroup(id))) ?? NaN);
    createSteps.push(made.timings);
    if (i === 0) {
      // Memory at the end of the wait; CPU over its second half, once the boot's own work
      // (the controllers' first syncs, CoreDNS's start) has settled.
      options.log(`  idling ${options.idleSeconds}s before measuring memory and CPU`);
      const half = options.idleSeconds / 2;
      await new Promise((r) => setTimeout(r, half * 1000));
      const before = await componentUse(await pidsIn(clusterCgroup(id)));
      await new Promise((r) => setTimeout(r, half * 1000));
      const after = await componentUse(await pidsIn(clusterCgroup(id)));
      report.idleMemory = memoryOf(after);
      report.idleComponents = perClusterByComponent([before], [after], half);
      report.idleCpuWindowSeconds = half;
    }
    t = Date.now();
    await runtime.stop(id);
    report.stopMs.push(Date.now() - t);
    const cpuBeforeStart = (await cpuSeconds(clusterCgroup(id))) ?? 0;
    t = Date.now();
    const started = await runtime.start(id);
    report.startReadyMs.push(Date.now() - t);
    report.startCpuSeconds.push(((await cpuSeconds(clusterCgroup(id))) ?? NaN) - cpuBeforeStart);
    startSteps.push(started.timings);
  } finally {
    await runtime.destroy(id);
  }
  options.log(
    `  ${release.version} run ${i + 1}/${options.runs}: baseline ${report.baselineReadyMs[i]} ms, create→ready ${report.createReadyMs[i]} ms, stop ${report.stopMs[i]} ms, start→ready ${report.startReadyMs[i]} ms`,
  );
}

/** One line per figure: each release's median and its ratio to the first release's. */
export function formatComparison(reports: BenchReport[]): string {
  const [first, ...rest] = reports;
  const figure = (name: string, pick: (r: BenchReport) => number, unit: (v: number) => string) =>
    `  ${name.padEnd(30)} ${reports.map((r) => `${r.kubernetesVersion} ${unit(pick(r))}`).join("  ")}  (${rest
      .map((r) => `${(pick(r) / pick(first)).toFixed(2)}×`)
      .join(", ")} of ${first.kubernetesVersion})`;
  const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  const mib = (v: number) => `${v.toFixed(0)} MiB`;
  return `${[
    `versions compared, interleaved run by run (medians):`,
    figure("baseline bare apiserver", (r) => median(r.baselineReadyMs), s),
    figure("cold create → ready", (r) => median(r.createReadyMs), s),
    figure("start → ready", (r) => median(r.startReadyMs), s),
    figure("idle private memory", (r) => r.idleMemory.privateMiB, mib),
    figure("idle RSS", (r) => r.idleMemory.rssMiB, mib),
  ].join("\n")}\n`;
}

export function formatReport(r: BenchReport): string {
  const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  const cpu = (v: number[]) => `p50 ${median(v).toFixed(1)}`;
  const base = median(r.baselineReadyMs);
  const lines = [
    `tempkube bench: Kubernetes ${r.kubernetesVersion}, ${r.runs} run(s), medians (p90 where noted)`,
    `  baseline  bare kine + kube-apiserver → /readyz   p50 ${s(base)}`,
    `  cold create → ready                              p50 ${s(median(r.createReadyMs))}  p90 ${s(percentile(r.createReadyMs, 90))}  (${(median(r.createReadyMs) / base).toFixed(1)}× baseline; target ≤ 2 s)`,
    `  CPU used to ready (CPU-seconds)                  bare kine + kube-apiserver ${cpu(r.baselineCpuSeconds)}, create ${cpu(r.createCpuSeconds)}, start ${cpu(r.startCpuSeconds)} (a cluster's processes; pods included)`,
    `  stop                                             p50 ${s(median(r.stopMs))}`,
    `  start → ready (after stop, state intact)         p50 ${s(median(r.startReadyMs))}  (${(median(r.startReadyMs) / base).toFixed(1)}× baseline; target ≤ 1.5 s)`,
    ...idleLines(r),
    `  where create time goes (p50 ms): ${Object.entries(r.createSteps)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")}`,
    `  where start time goes (p50 ms): ${Object.entries(r.startSteps)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")}`,
  ];
  return `${lines.join("\n")}\n`;
}

/**
 * The idle cluster, with issue 15's targets, and what its kube-apiserver alone holds and
 * uses: a floor that no start order or setting of the other components goes below.
 */
function idleLines(r: BenchReport): string[] {
  const cores = r.idleComponents.reduce((sum, c) => sum + c.cores, 0);
  const apiserver = r.idleComponents.find((c) => c.component === "kube-apiserver");
  return [
    `  idle cluster: private ${r.idleMemory.privateMiB.toFixed(0)} MiB (target ≤ 200 MiB), RSS ${r.idleMemory.rssMiB.toFixed(0)} MiB, CPU ${cores.toFixed(3)} core over ${r.idleCpuWindowSeconds} s (target ≤ 0.015 core); bare kine + kube-apiserver at /readyz: private ${r.baselineMemory.privateMiB.toFixed(0)} MiB, RSS ${r.baselineMemory.rssMiB.toFixed(0)} MiB`,
    ...(apiserver
      ? [
          `  of which kube-apiserver alone: private ${apiserver.privateMiB.toFixed(0)} MiB, CPU ${apiserver.cores.toFixed(3)} core`,
        ]
      : []),
    formatComponents(r.idleComponents).trimEnd(),
  ];
}
