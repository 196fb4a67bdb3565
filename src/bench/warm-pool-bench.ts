import { mkdtemp, readFile, rm } from "node:fs/promises";
import { KubeRequester } from "./kube-request.js";
import { ApiClient } from "../client/api-client.js";
import { LocalRuntime } from "../runtime/local/local-runtime.js";
import { startServer } from "../server/server.js";
import { median, percentile } from "./stats.js";

export interface WarmPoolReport {
  /** POST /v1/clusters → kubeconfig fetched → first API request with it answered. */
  createUsableMs: number[];
  /** The same request against the same cluster again: what any kubeconfig use costs at least. */
  requestMs: number[];
}

/**
 * Warm-pool create → kubeconfig usable, end to end through the real server and the local
 * runtime: each run waits (untimed) for the pool to hold a booted cluster, then times the
 * create request, the kubeconfig download and the first API request made with it.
 */
export async function benchWarmPool(runs: number, log: (line: string) => void): Promise<WarmPoolReport> {
  // A data dir of the bench's own (the server's runtime lives in it), with a short path: the
  // kubelet's unix sockets sit deep under it and must fit in 107 bytes.
  const dir = await mkdtemp("/tmp/tkb-");
  const runtime = new LocalRuntime({ dataDir: dir });
  const server = await startServer({ host: "127.0.0.1", port: 0, dataDir: dir, warmPool: 1 });
  const token = (await readFile(server.adminTokenFile, "utf8")).trim();
  const api = ApiClient.at(server.url, token);
  const report: WarmPoolReport = { createUsableMs: [], requestMs: [] };
  try {
    for (let i = 0; i < runs; i++) {
      const deadline = Date.now() + 5 * 60_000;
      while (!(await server.store.clusters.all()).some((r) => r.pooled && r.phase === "running")) {
        if (Date.now() > deadline) throw new Error("the warm pool did not boot a cluster within 5 minutes");
        await new Promise((r) => setTimeout(r, 100));
      }
      const t = Date.now();
      const created = await api.request<{ id: string; phase: string }>("POST", "/v1/clusters", { ttlMinutes: 10 });
      const kubeconfig = await api.request<string>("GET", `/v1/clusters/${created.id}/kubeconfig`);
      const status = await new KubeRequester(kubeconfig).get("/api/v1/namespaces/default/serviceaccounts/default");
      const usable = Date.now() - t;
      if (created.phase !== "running" || status !== 200)
        throw new Error(`cluster ${created.id} was not usable at once (phase ${created.phase}, HTTP ${status})`);
      const t2 = Date.now();
      await new KubeRequester(kubeconfig).get("/api/v1/namespaces/default/serviceaccounts/default");
      report.requestMs.push(Date.now() - t2);
      report.createUsableMs.push(usable);
      log(
        `  warm pool run ${i + 1}/${runs}: create → kubeconfig usable ${usable} ms (one API request alone ${report.requestMs[i]} ms)`,
      );
      await api.request("DELETE", `/v1/clusters/${created.id}?wait=true`);
    }
  } finally {
    // Closing waits for operations under way; then the pool's last cluster (and anything else the bench made) goes.
    await server.close();
    for (const id of await runtime.list()) await runtime.destroy(id);
    await rm(dir, { recursive: true, force: true });
  }
  return report;
}

export function formatWarmPool(r: WarmPoolReport, baselineMs: number): string {
  const s = (ms: number) => `${ms.toFixed(0)} ms`;
  return (
    `  warm-pool create → kubeconfig usable            p50 ${s(median(r.createUsableMs))}  p90 ${s(percentile(r.createUsableMs, 90))}  (${(median(r.createUsableMs) / baselineMs).toFixed(2)}× baseline; target ≤ 50 ms)\n` +
    `    of which one API request with the kubeconfig    p50 ${s(median(r.requestMs))}\n`
  );
}
