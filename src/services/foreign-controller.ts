import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CoreV1Api, KubernetesObjectApi, PatchStrategy, type KubernetesObject } from "@kubernetes/client-node";
import YAML from "yaml";
import type { Clock } from "../core/clock.js";
import type { GatewayConfig } from "../gateway/gateway-files.js";
import { ensureGateway, stopGateway } from "../gateway/gateway-process.js";
import { TempkubeError } from "../util/errors.js";
import { isAlive } from "../util/lock.js";
import { EphemeronController, type ControllerLog, type EphemeronEvent } from "./ephemeron-controller.js";
import { ephemeronClusterObjects } from "./ephemeron-crd.js";
import { describeApiError, EphemeronKube } from "./ephemeron-kube.js";
import { EPHEMERON_GROUP, EPHEMERON_PLURAL } from "./ephemeron-types.js";

/**
 * Ephemerons on a cluster tempkube does not run (`tempkube ephemeron controller`): any
 * Kubernetes cluster whose admin kubeconfig this host has and whose nodes' addresses it
 * reaches (kind, minikube, a lab cluster on the same network). It installs the CRD and the
 * bindable role (what `tempkube ephemeron manifests --with-role` prints), runs a gateway of
 * its own on this host, and the same controller as tempkube's clusters get: each Ephemeron's
 * NodePort Service is served as `<name>.<domain>` through that gateway's HTTP port (HTTPS on
 * its TLS port), Available once a GET through it answers 200. As the reference's controller
 * (run beside a cluster with `cargo run`), it runs in the foreground until stopped.
 */
export interface ForeignControllerOptions {
  kubeconfig: string;
  /** Ephemerons are served as `<name>.<domain>`. */
  domain: string;
  http: { host: string; port: number };
  tls: { host: string; port: number };
  /** Where the cluster's NodePorts answer; default: the InternalIP of its first Ready node. */
  nodeAddress?: string;
  /** The gateway's files and this controller's pid file. */
  dataDir: string;
  clock: Clock;
  log: ControllerLog;
  onEvent?: (event: EphemeronEvent) => void;
}

/** The name the routes are owned under (route owner `ephemeron/external/<name>`). */
const FOREIGN_CLUSTER = "external";
const ESTABLISHED_WAIT_MS = 30_000;

export class ForeignController {
  private controller?: EphemeronController;
  private readonly pidFile: string;

  constructor(private readonly o: ForeignControllerOptions) {
    this.pidFile = join(o.dataDir, "controller.pid");
  }

  /** Installs the CRD, starts the gateway and the controller; returns where it serves. */
  async start(): Promise<{ nodeAddress: string; server: string }> {
    await mkdir(this.o.dataDir, { recursive: true });
    await this.claimDataDir();
    try {
      const kube = readKubeconfig(this.o.kubeconfig);
      const server = kube.kubeConfig.getCurrentCluster()?.server ?? "(no server in the kubeconfig)";
      await installCrd(kube, server);
      const nodeAddress = this.o.nodeAddress ?? (await firstNodeAddress(kube, server));
      const gateway: GatewayConfig = {
        listen: this.o.tls,
        httpListen: this.o.http,
        publicAddress: this.o.http.host,
        // No cluster is reached through this gateway, but it takes `<label>.<cluster domain>` for
        // an apiserver's name (SNI passthrough, decided before any route): with the Ephemerons'
        // own domain there, `<name>.<domain>` would be taken for cluster "<name>" and closed.
        clusterDomain: `clusters.${this.o.domain}`,
        certificateDomains: [this.o.domain],
      };
      await ensureGateway(this.o.dataDir, gateway);
      // The Available check goes through the gateway as a user's request would; 0.0.0.0 is reached on loopback.
      const probeHost = ["0.0.0.0", "::"].includes(this.o.http.host) ? "127.0.0.1" : this.o.http.host;
      this.controller = new EphemeronController({
        clusterId: FOREIGN_CLUSTER,
        gatewayKnowsCluster: false,
        adminKubeconfig: this.o.kubeconfig,
        nodeAddress,
        dataDir: this.o.dataDir,
        host: (name) => `${name}.${this.o.domain}`,
        gatewayHttp: { host: probeHost, port: this.o.http.port },
        clock: this.o.clock,
        log: this.o.log,
        onEvent: this.o.onEvent,
      });
      await this.controller.start();
      return { nodeAddress, server };
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Stops the controller and its gateway; the Ephemerons stay (a later start serves them again, or deletes what expired). */
  async stop(): Promise<void> {
    await this.controller?.stop();
    this.controller = undefined;
    await stopGateway(this.o.dataDir).catch((err: unknown) => this.o.log.warn({ err }, "stopping the gateway failed"));
    await rm(this.pidFile, { force: true });
  }

  /** One controller per data dir: a second would restart the first's gateway with its own configuration. */
  private async claimDataDir(): Promise<void> {
    const other = Number(await readFile(this.pidFile, "utf8").catch(() => ""));
    if (Number.isInteger(other) && other > 0 && other !== process.pid && isAlive(other))
      throw new TempkubeError(
        "conflict",
        `another tempkube ephemeron controller (pid ${other}) uses ${this.o.dataDir}; give this one --data-dir of its own`,
      );
    await writeFile(this.pidFile, `${process.pid}\n`);
  }
}

function readKubeconfig(file: string): EphemeronKube {
  try {
    return new EphemeronKube(file);
  } catch (err) {
    throw new TempkubeError("invalid-input", `--kubeconfig ${file}: ${(err as Error).message}`);
  }
}

/** Server-side apply of the CRD and the role (idempotent, keeps others' fields), then waits until the CRD is Established. */
async function installCrd(kube: EphemeronKube, server: string): Promise<void> {
  const objects = KubernetesObjectApi.makeApiClient(kube.kubeConfig);
  for (const doc of YAML.parseAllDocuments(ephemeronClusterObjects())) {
    const object = doc.toJS() as KubernetesObject;
    await objects.patch(object, undefined, undefined, "tempkube", true, PatchStrategy.ServerSideApply).catch((err) => {
      throw new TempkubeError(
        "invalid-input",
        `could not install ${object.kind} ${object.metadata?.name} on ${server}: ${describeApiError(err)} (the kubeconfig must be a cluster admin's)`,
      );
    });
  }
  const crd = {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${EPHEMERON_PLURAL}.${EPHEMERON_GROUP}` },
  };
  const deadline = Date.now() + ESTABLISHED_WAIT_MS;
  for (;;) {
    const read = (await objects.read(crd)) as KubernetesObject & {
      status?: { conditions?: { type: string; status: string }[] };
    };
    if (read.status?.conditions?.some((c) => c.type === "Established" && c.status === "True")) return;
    if (Date.now() > deadline)
      throw new TempkubeError(
        "timeout",
        `the Ephemeron CRD is not Established on ${server} after ${ESTABLISHED_WAIT_MS / 1000} s`,
      );
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The InternalIP of the first Ready node: where a NodePort answers (kube-proxy on every node). */
async function firstNodeAddress(kube: EphemeronKube, server: string): Promise<string> {
  const nodes = await kube.kubeConfig.makeApiClient(CoreV1Api).listNode();
  for (const node of nodes.items) {
    const ready = node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
    const ip = node.status?.addresses?.find((a) => a.type === "InternalIP")?.address;
    if (ready && ip) return ip;
  }
  throw new TempkubeError(
    "conflict",
    `no Ready node with an InternalIP on ${server}: the gateway needs one to reach NodePorts (or give --node-address)`,
  );
}
