import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { systemClock } from "../core/clock.js";
import { newClusterId } from "../core/cluster-spec.js";
import { ensureGateway, stopGateway } from "../gateway/gateway-process.js";
import { ClusterLayout, clustersDir } from "../runtime/local/layout.js";
import { LocalRuntime } from "../runtime/local/local-runtime.js";
import { DEFAULT_KUBERNETES_MINOR } from "../setup/catalogue.js";
import { KubeEphemeronApi } from "../services/ephemeron-api.js";
import { ephemeronPod } from "../services/ephemeron-children.js";
import { probeThroughGateway, type EphemeronEvent } from "../services/ephemeron-controller.js";
import { EphemeronHub } from "../services/ephemeron-hub.js";
import { apiStatus, EphemeronKube } from "../services/ephemeron-kube.js";
import {
  EPHEMERON_GROUP,
  EPHEMERON_KIND,
  EPHEMERON_VERSION,
  ephemeronHost,
  type Ephemeron,
} from "../services/ephemeron-types.js";
import { freePort } from "../util/net.js";
import { median, percentile } from "./stats.js";

export interface ServicesReport {
  runs: number;
  kubernetesVersion: string;
  /** What was measured: the hub and controller driven directly against a cluster the bench made (no tempkube server). */
  setup: string;
  /** Create request → first HTTP 200 through the gateway's HTTP port with the service's Host. */
  servingMs: number[];
  /** Create request → its Pod Ready (polled every POLL_MS). */
  podReadyMs: number[];
  /** Create request → the controller's "available" event (Available True, `host` annotation written). */
  availableMs: number[];
  /** Baseline: the same Pod (ephemeronPod of the same spec, no owner), created bare → Ready, in the same cluster and loop. */
  baselinePodReadyMs: number[];
}

const DOMAIN = "clusters.bench.test";
const SERVICES_DOMAIN = `services.${DOMAIN}`;
const POLL_MS = 50;
const RUN_TIMEOUT_MS = 120_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The busybox image tempkube builds (src/setup/image-recipes.ts), serving a page with httpd,
 * as src/services/ephemeron.e2e.test.ts serves one; a readiness probe every second, as a
 * preset would have.
 */
function service(name: string, expiresAt: number): Ephemeron {
  return {
    apiVersion: `${EPHEMERON_GROUP}/${EPHEMERON_VERSION}`,
    kind: EPHEMERON_KIND,
    metadata: { name },
    spec: {
      expirationTime: new Date(expiresAt).toISOString(),
      service: {
        image: "busybox:1.35",
        port: 8080,
        command: ["sh", "-c", `mkdir -p /www && echo bench-${name} > /www/index.html && exec httpd -f -p 8080 -h /www`],
        readinessProbe: { path: "/index.html", periodSeconds: 1 },
      },
    },
  };
}

/**
 * Ephemeral services' create → serving (issue 14's benchmark, target p50 ≤ 2 s on a warm
 * services cluster). One cluster is booted first and not timed, with the gateway and an
 * EphemeronHub that treats it as the services cluster (`<name>.<services domain>`): the
 * controller and route the server runs, without the REST layer (whose part is one API call:
 * the create here is KubeEphemeronApi.create, what EphemeralServices.create makes). A first
 * service, not timed, warms the image and the controller's informers. Each run then times, from
 * the create request: the Pod Ready, the controller's Available event, and the first 200 of a
 * GET through the gateway's HTTP port with the service's Host; and, interleaved so the
 * machine's noise falls on both, a bare Pod of the same spec → Ready (what Kubernetes alone takes).
 */
export async function benchServices(runs: number, log: (line: string) => void): Promise<ServicesReport> {
  const dir = await mkdtemp("/tmp/tks-");
  const id = `bsv${newClusterId().slice(0, 6)}`;
  const runtime = new LocalRuntime({ dataDir: dir, clusterDomain: DOMAIN });
  const gatewayHttp = { host: "127.0.0.1", port: await freePort() };
  const events: EphemeronEvent[] = [];
  let hub: EphemeronHub | undefined;
  const report: ServicesReport = {
    runs,
    kubernetesVersion: DEFAULT_KUBERNETES_MINOR,
    setup: "EphemeronHub + controller driven directly against a cluster the bench boots (no tempkube server)",
    servingMs: [],
    podReadyMs: [],
    availableMs: [],
    baselinePodReadyMs: [],
  };
  try {
    await ensureGateway(dir, {
      listen: { host: "127.0.0.1", port: await freePort() },
      httpListen: gatewayHttp,
      publicAddress: "127.0.0.1",
      clusterDomain: DOMAIN,
    });
    const t = Date.now();
    await runtime.provision({
      id,
      kubernetesVersion: DEFAULT_KUBERNETES_MINOR,
      privileged: false,
      size: "1-small",
      workers: 0,
    });
    log(`  services cluster ${id} booted in ${((Date.now() - t) / 1000).toFixed(1)} s (not timed)`);
    const adminFile = new ClusterLayout(id, clustersDir(dir)).kubeconfig("admin");
    const kube = new EphemeronKube(adminFile);
    const api = await KubeEphemeronApi.fromKubeconfig(await readFile(adminFile, "utf8"));
    hub = new EphemeronHub({
      dataDir: dir,
      gatewayHttp,
      clusterDomain: DOMAIN,
      servicesDomain: SERVICES_DOMAIN,
      servicesClusterId: () => id,
      clock: systemClock,
      log: { info: () => undefined, warn: (o, m) => log(`  controller: ${m} ${JSON.stringify(o)}`) },
      rescanMs: 500,
    });
    hub.onEvent((e) => events.push(e));
    await hub.start();

    const podReady = async (name: string) => {
      try {
        const pod = (await kube.readPod(name)) as { status?: { conditions?: { type: string; status: string }[] } };
        return pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
      } catch (err) {
        if (apiStatus(err) === 404) return false;
        throw err;
      }
    };
    const serviceOnce = async (label: string) => {
      const name = `b${randomBytes(5).toString("hex")}`;
      const host = ephemeronHost(name, { servicesDomain: SERVICES_DOMAIN });
      const t0 = Date.now();
      await api.create(service(name, t0 + 30 * 60_000));
      // Each watched by its own loop, so that one slow answer does not delay noticing the other:
      // the Pod polled every POLL_MS; a GET started every POLL_MS without waiting for the ones
      // in flight (before the Pod is ready one can hang up to the probe's timeout at the node port).
      const deadline = () => {
        if (Date.now() - t0 > RUN_TIMEOUT_MS)
          throw new Error(`${label}: service ${name} did not serve within 2 minutes`);
      };
      const readyLoop = async () => {
        while (!(await podReady(name))) {
          deadline();
          await sleep(POLL_MS);
        }
        return Date.now() - t0;
      };
      const servingLoop = async () => {
        let served: number | undefined;
        const inFlight = new Set<Promise<void>>();
        while (served === undefined) {
          deadline();
          const p: Promise<void> = probeThroughGateway(gatewayHttp, host, "/index.html").then((code) => {
            if (code === 200) served ??= Date.now() - t0;
            inFlight.delete(p);
          });
          inFlight.add(p);
          await sleep(POLL_MS);
        }
        await Promise.all(inFlight);
        return served;
      };
      const [ready, serving] = await Promise.all([readyLoop(), servingLoop()]);
      // The event follows the host annotation; it may come a little after the first 200.
      while (!events.some((e) => e.type === "available" && e.name === name)) {
        if (Date.now() - t0 > RUN_TIMEOUT_MS) throw new Error(`${label}: no "available" event for ${name}`);
        await sleep(10);
      }
      const available = events.find((e) => e.type === "available" && e.name === name)!.at - t0;
      await api.delete(name);
      return { serving, ready, available };
    };
    const baselineOnce = async (label: string) => {
      const name = `p${randomBytes(5).toString("hex")}`;
      // The Ephemeron's own Pod, unowned and with labels the controller does not watch.
      const pod = ephemeronPod({ ...service(name, Date.now() + 60_000), metadata: { name, uid: "none" } });
      const meta = pod.metadata as Record<string, unknown>;
      delete meta.ownerReferences;
      meta.labels = { "tempkube.dev/bench": "baseline" };
      const t0 = Date.now();
      const made = (await kube.createPod(pod)) as { metadata?: { uid?: string } };
      while (!(await podReady(name))) {
        if (Date.now() - t0 > RUN_TIMEOUT_MS) throw new Error(`${label}: pod ${name} not Ready within 2 minutes`);
        await sleep(POLL_MS);
      }
      const ms = Date.now() - t0;
      await kube.deletePod(name, made.metadata?.uid, 0).catch(() => undefined);
      return ms;
    };

    const warm = await serviceOnce("warm-up");
    log(`  warm-up service (image, informers; not counted): serving after ${warm.serving} ms`);
    await baselineOnce("warm-up");
    for (let i = 0; i < runs; i++) {
      const base = await baselineOnce(`run ${i + 1}`);
      const s = await serviceOnce(`run ${i + 1}`);
      report.baselinePodReadyMs.push(base);
      report.servingMs.push(s.serving);
      report.podReadyMs.push(s.ready);
      report.availableMs.push(s.available);
      log(
        `  run ${i + 1}/${runs}: create → serving ${s.serving} ms (pod Ready ${s.ready} ms, Available ${s.available} ms); bare Pod → Ready ${base} ms`,
      );
    }
  } finally {
    await hub?.stop().catch(() => undefined);
    await runtime.destroy(id).catch((err: unknown) => log(`  could not destroy ${id}: ${String(err)}`));
    await stopGateway(dir).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
  return report;
}

export function formatServices(r: ServicesReport): string {
  const s = (v: number[]) => `p50 ${(median(v) / 1000).toFixed(2)} s  p90 ${(percentile(v, 90) / 1000).toFixed(2)} s`;
  const base = median(r.baselinePodReadyMs);
  return (
    `tempkube bench --services (${r.runs} runs, Kubernetes ${r.kubernetesVersion}; ${r.setup})\n` +
    `  create → serving (first 200 through the gateway)  ${s(r.servingMs)}  (${(median(r.servingMs) / base).toFixed(2)}× baseline; target p50 ≤ 2 s)\n` +
    `    create → pod Ready                             ${s(r.podReadyMs)}\n` +
    `    create → Available (host set)                  ${s(r.availableMs)}\n` +
    `  baseline: the same Pod bare → Ready             ${s(r.baselinePodReadyMs)}\n`
  );
}
