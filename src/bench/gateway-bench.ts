import { mkdtemp, readFile, rm } from "node:fs/promises";
import { ApiClient } from "../client/api-client.js";
import { systemClock, type Clock } from "../core/clock.js";
import { stopGateway } from "../gateway/gateway-process.js";
import { LocalRuntime } from "../runtime/local/local-runtime.js";
import { startServer } from "../server/server.js";
import { KubeRequester } from "./kube-request.js";
import { loopbackGateway } from "./loopback-gateway.js";
import { median, percentile } from "./stats.js";

export interface GatewayReport {
  /** GET /version on a new TLS connection each (what every kubectl command pays): direct to the apiserver, and through the gateway. */
  directNewConnectionMs: number[];
  gatewayNewConnectionMs: number[];
  /** The same over one kept-alive connection (a client-go process, a watch). */
  directKeptAliveMs: number[];
  gatewayKeptAliveMs: number[];
  /** A sleeping cluster: connect through the gateway → first API answer (the wake inside). */
  wakeMs: number[];
}

const IDLE_MINUTES = 1;

/**
 * The gateway's cost and the wake-on-connect time, on one real cluster behind a real server
 * and gateway on loopback. Sleeps are brought on by moving the server's clock past the idle
 * time (the bench's only fake: waiting out a real minute per run would measure nothing more);
 * the wake is real: a TLS connection through the gateway, held while the cluster starts.
 */
export async function benchGateway(
  requests: number,
  wakes: number,
  log: (line: string) => void,
): Promise<GatewayReport> {
  const dir = await mkdtemp("/tmp/tkw-");
  const runtime = new LocalRuntime({ dataDir: dir });
  let offsetMs = 0;
  const clock: Clock = { ...systemClock, now: () => Date.now() + offsetMs };
  const server = await startServer({
    host: "127.0.0.1",
    port: 0,
    dataDir: dir,
    warmPool: 0,
    clock,
    gateway: await loopbackGateway(),
  });
  const api = ApiClient.at(server.url, (await readFile(server.adminTokenFile, "utf8")).trim());
  const report: GatewayReport = {
    directNewConnectionMs: [],
    gatewayNewConnectionMs: [],
    directKeptAliveMs: [],
    gatewayKeptAliveMs: [],
    wakeMs: [],
  };
  try {
    const created = await api.request<{ id: string; phase: string }>("POST", "/v1/clusters", {
      ttlMinutes: 180,
      idleMinutes: IDLE_MINUTES,
      wait: true,
    });
    if (created.phase !== "running") throw new Error(`cluster ${created.id} is ${created.phase}, not running`);
    const throughGateway = await api.request<string>("GET", `/v1/clusters/${created.id}/kubeconfig`);
    const direct = (await runtime.credentials(created.id)).tenantKubeconfig;
    const timed = async (k: KubeRequester, into: number[]) => {
      const t = process.hrtime.bigint();
      const status = await k.get("/version");
      if (status !== 200) throw new Error(`GET /version answered ${status}`);
      into.push(Number(process.hrtime.bigint() - t) / 1e6);
    };
    // Interleaved, so that the machine's noise falls on both alike.
    const kept = [new KubeRequester(direct, true), new KubeRequester(throughGateway, true)];
    for (let i = 0; i < requests; i++) {
      await timed(new KubeRequester(direct), report.directNewConnectionMs);
      await timed(new KubeRequester(throughGateway), report.gatewayNewConnectionMs);
      await timed(kept[0], report.directKeptAliveMs);
      await timed(kept[1], report.gatewayKeptAliveMs);
    }
    for (const k of kept) k.close();
    log(
      `  gateway: GET /version p50 ${median(report.gatewayNewConnectionMs).toFixed(1)} ms vs direct ${median(report.directNewConnectionMs).toFixed(1)} ms (new connections, ${requests} each)`,
    );

    for (let i = 0; i < wakes; i++) {
      offsetMs += (IDLE_MINUTES * 60 + 5) * 1000;
      const deadline = Date.now() + 120_000;
      while ((await api.request<{ phase: string }>("GET", `/v1/clusters/${created.id}`)).phase !== "sleeping") {
        if (Date.now() > deadline) throw new Error(`cluster ${created.id} did not fall asleep within 2 minutes`);
        await new Promise((r) => setTimeout(r, 200));
      }
      // Asleep means stopped: the sleep's stop has finished once no component runs.
      while ((await runtime.status(created.id)).components.some((c) => c.running)) {
        if (Date.now() > deadline) throw new Error(`cluster ${created.id} still runs processes while sleeping`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const t = Date.now();
      const status = await new KubeRequester(throughGateway).get("/version", 120_000);
      const ms = Date.now() - t;
      if (status !== 200) throw new Error(`the woken cluster answered ${status}`);
      report.wakeMs.push(ms);
      log(`  wake on connect run ${i + 1}/${wakes}: connect → first API answer ${ms} ms`);
    }
  } finally {
    await server.close();
    for (const id of await runtime.list()) await runtime.destroy(id);
    await stopGateway(dir);
    await rm(dir, { recursive: true, force: true });
  }
  return report;
}

export function formatGateway(r: GatewayReport, baselineMs: number): string {
  const s = (ms: number) => `${ms.toFixed(1)} ms`;
  const ratio = (a: number[], b: number[]) => `${(median(a) / median(b)).toFixed(2)}×`;
  return (
    `  GET /version through the gateway, new connection p50 ${s(median(r.gatewayNewConnectionMs))}  p90 ${s(percentile(r.gatewayNewConnectionMs, 90))}  (direct ${s(median(r.directNewConnectionMs))}; ${ratio(r.gatewayNewConnectionMs, r.directNewConnectionMs)})\n` +
    `  GET /version through the gateway, kept alive    p50 ${s(median(r.gatewayKeptAliveMs))}  p90 ${s(percentile(r.gatewayKeptAliveMs, 90))}  (direct ${s(median(r.directKeptAliveMs))}; ${ratio(r.gatewayKeptAliveMs, r.directKeptAliveMs)})\n` +
    (r.wakeMs.length
      ? `  wake on connect → first API answer              p50 ${(median(r.wakeMs) / 1000).toFixed(2)} s  (${(median(r.wakeMs) / baselineMs).toFixed(2)}× baseline; target ≤ 2 s)\n`
      : "")
  );
}
