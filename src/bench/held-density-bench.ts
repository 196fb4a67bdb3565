import { mkdtemp, readFile, rm } from "node:fs/promises";
import { ApiClient } from "../client/api-client.js";
import { stopGateway } from "../gateway/gateway-process.js";
import { meminfo } from "../host/host-budgets.js";
import { clusterCgroup, cpuSeconds } from "../runtime/local/cgroups.js";
import { LocalRuntime } from "../runtime/local/local-runtime.js";
import { startServer } from "../server/server.js";
import { TempkubeError } from "../util/errors.js";
import { KubeRequester } from "./kube-request.js";
import { loopbackGateway } from "./loopback-gateway.js";
import { median } from "./stats.js";

export interface HeldDensityReport {
  clusters: number;
  /** The server's capacity on this host (what fits in memory at once, idle clusters frozen). */
  capacity: number;
  freezeAfterMs: number;
  /** Create → running of the k-th cluster, as the API answers it (wait=true), refusals waited out included. */
  createMs: number[];
  /** Creates answered 429 first (the host full and nothing frozen yet), each tried again 2 s later. */
  refusedFirst: number;
  /** At the end: clusters running awake, frozen, asleep. */
  awake: number;
  frozen: number;
  asleep: number;
  /** CPU of every cluster together over the idle window, in cores, and the window. */
  heldCores: number;
  idleSeconds: number;
  /** MemAvailable before the first create and at the end of the idle window (MiB). */
  memAvailableBeforeMiB: number;
  memAvailableAfterMiB: number;
  /** GET /version through the gateway, each cluster in turn: what it was before, and the time to its answer. */
  answers: { was: "awake" | "frozen" | "asleep"; ms: number; status: number }[];
}

const memAvailableMiB = async () => (await meminfo()).available / 2 ** 20;

interface ClusterView {
  id: string;
  phase: string;
  frozen?: boolean;
}

/**
 * Clusters held on one host through the server, as users meet it (issue 15: "idle clusters held
 * at once"): N clusters created one after another through the API; idle ones are frozen after
 * `freezeAfterMs` (the server's --freeze-after; shortened here only to spare the wait), and once
 * the host is full the longest frozen go to sleep for each new one. At the end, the CPU of them
 * all over an idle window, and each asked in turn through the gateway (a frozen one thaws, a
 * sleeping one wakes, and another frozen one sleeps for it). Everything is deleted after.
 */
export async function benchHeldDensity(
  n: number,
  options: { freezeAfterMs: number; idleSeconds: number; hostCapacity?: number },
  log: (l: string) => void,
): Promise<HeldDensityReport> {
  const dir = await mkdtemp("/tmp/tkh-");
  const runtime = new LocalRuntime({ dataDir: dir });
  const memAvailableBeforeMiB = await memAvailableMiB();
  const server = await startServer({
    host: "127.0.0.1",
    port: 0,
    dataDir: dir,
    warmPool: 0,
    hostCapacity: options.hostCapacity,
    freezeAfterMs: options.freezeAfterMs,
    gateway: await loopbackGateway(),
  });
  const api = ApiClient.at(server.url, (await readFile(server.adminTokenFile, "utf8")).trim());
  const report: HeldDensityReport = {
    clusters: n,
    capacity: server.hostCapacity,
    freezeAfterMs: options.freezeAfterMs,
    createMs: [],
    refusedFirst: 0,
    awake: 0,
    frozen: 0,
    asleep: 0,
    heldCores: 0,
    idleSeconds: options.idleSeconds,
    memAvailableBeforeMiB,
    memAvailableAfterMiB: 0,
    answers: [],
  };
  log(`  held: server capacity on this host ${report.capacity}; creating ${n}`);
  const ids: string[] = [];
  try {
    for (let k = 0; k < n; k++) {
      const t = Date.now();
      let made: ClusterView | undefined;
      for (let refused = 0; !made; refused++) {
        try {
          made = await api.request<ClusterView>("POST", "/v1/clusters", {
            ttlMinutes: 180,
            size: "1-small",
            wait: true,
          });
        } catch (err) {
          // Full, and nothing frozen yet to give way: the newest clusters freeze within seconds.
          if (!(err instanceof TempkubeError && err.type === "capacity") || refused > 60) throw err;
          if (refused === 0) report.refusedFirst++;
          await new Promise((r) => setTimeout(r, 2000));
        }
      }
      ids.push(made.id);
      if (made.phase !== "running") throw new Error(`cluster ${made.id} is ${made.phase}, not running`);
      report.createMs.push(Date.now() - t);
      log(`  held: cluster ${k + 1}/${n} running in ${report.createMs[k]} ms`);
    }
    // Let the newest freeze too, then measure what they all take while held.
    await new Promise((r) => setTimeout(r, options.freezeAfterMs + 15_000));
    const before = await Promise.all(ids.map((id) => cpuSeconds(clusterCgroup(id))));
    const t = Date.now();
    await new Promise((r) => setTimeout(r, options.idleSeconds * 1000));
    const after = await Promise.all(ids.map((id) => cpuSeconds(clusterCgroup(id))));
    const window = (Date.now() - t) / 1000;
    report.heldCores = ids.reduce((sum, _, i) => sum + ((after[i] ?? 0) - (before[i] ?? 0)), 0) / window;
    report.memAvailableAfterMiB = await memAvailableMiB();
    const stateOf = (c: ClusterView) => (c.phase === "sleeping" ? "asleep" : c.frozen ? "frozen" : "awake");
    for (const c of (await api.request<{ items: ClusterView[] }>("GET", "/v1/clusters")).items) report[stateOf(c)]++;
    for (const id of ids) {
      const kubeconfig = await api.request<string>("GET", `/v1/clusters/${id}/kubeconfig`);
      // As it is when asked: waking one puts another frozen one to sleep on a full host.
      const was = stateOf(await api.request<ClusterView>("GET", `/v1/clusters/${id}`));
      const t0 = Date.now();
      const status = await new KubeRequester(kubeconfig).get("/version", 180_000).catch(() => 0);
      report.answers.push({ was, ms: Date.now() - t0, status });
    }
  } finally {
    await server.close();
    await stopGateway(dir).catch(() => undefined);
    for (const id of await runtime.list()) await runtime.destroy(id).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
  return report;
}

export function formatHeldDensity(r: HeldDensityReport): string {
  const quarter = Math.max(1, Math.floor(r.clusters / 4));
  const by = (w: string) => r.answers.filter((a) => a.was === w);
  const answered = r.answers.filter((a) => a.status === 200).length;
  const line = (w: string) => {
    const a = by(w);
    return a.length ? `${a.length} ${w}: first answer p50 ${median(a.map((x) => x.ms))} ms` : `0 ${w}`;
  };
  return (
    `  held through the server: ${r.clusters} clusters on a host whose capacity is ${r.capacity} (--freeze-after ${r.freezeAfterMs / 1000} s)\n` +
    `    create → running p50 ${(median(r.createMs.slice(0, quarter)) / 1000).toFixed(2)} s (first quarter), ${(median(r.createMs.slice(-quarter)) / 1000).toFixed(2)} s (last quarter); ${r.refusedFirst} refused first (full, nothing frozen yet)\n` +
    `    held: ${r.awake} awake, ${r.frozen} frozen, ${r.asleep} asleep; all of them ${r.heldCores.toFixed(3)} core over ${r.idleSeconds} s; MemAvailable ${r.memAvailableBeforeMiB.toFixed(0)} → ${r.memAvailableAfterMiB.toFixed(0)} MiB\n` +
    `    answering through the gateway: ${answered} of ${r.clusters} (${line("awake")}; ${line("frozen")}; ${line("asleep")})\n`
  );
}
