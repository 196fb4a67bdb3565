import { readFile, writeFile } from "node:fs/promises";
import type { Command } from "commander";
import { DEFAULT_CLUSTER_EGRESS } from "../../core/cluster-egress.js";
import { DEFAULT_SIZE, SIZE_PRESETS, newClusterId, type SizePreset } from "../../core/cluster-spec.js";
import { GatewayPaths, type GatewayConfig } from "../../gateway/gateway-files.js";
import type { GatewayAccess } from "../../gateway/gateway-kubeconfig.js";
import { DEFAULT_KUBERNETES_MINOR } from "../../setup/catalogue.js";
import type { LocalRuntime } from "../../runtime/local/local-runtime.js";
import { TempkubeError } from "../../util/errors.js";
import { progress } from "../../util/progress.js";
import { dataDir } from "../../util/paths.js";
import { stepPrinter } from "../progress.js";
import { table } from "../output.js";

export interface CreateOptions {
  id?: string;
  version: string;
  size: string;
  workers: string;
  privileged?: boolean;
  kubeconfig?: string;
  clusterEgress: string;
}

/**
 * The gateway of this data dir, from the config the server wrote when it started it: the
 * runtime names clusters under its domain, and kubeconfigs lead through it. None: direct.
 */
async function gatewayOfDataDir(): Promise<GatewayAccess | undefined> {
  const path = new GatewayPaths(dataDir()).config;
  const text = await readFile(path, "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  const config = JSON.parse(text) as GatewayConfig;
  if (!config.publicAddress || !config.listen?.port || !config.clusterDomain)
    throw new TempkubeError("setup", `${path} lacks publicAddress, listen.port or clusterDomain`);
  return { publicAddress: config.publicAddress, port: config.listen.port, clusterDomain: config.clusterDomain };
}

/**
 * The local runtime of this data dir, under its gateway's cluster domain when it has one.
 * Loaded when a command runs, never to define one: it brings most of tempkube with it.
 */
async function localRuntime(clusterEgress?: string): Promise<LocalRuntime> {
  const [gateway, { LocalRuntime }, { parseClusterEgress }] = await Promise.all([
    gatewayOfDataDir(),
    import("../../runtime/local/local-runtime.js"),
    import("../../runtime/local/host-firewall.js"),
  ]);
  return new LocalRuntime({
    clusterDomain: gateway?.clusterDomain,
    clusterEgress: clusterEgress === undefined ? undefined : parseClusterEgress("--cluster-egress", clusterEgress),
  });
}

/**
 * What the user gets: through the gateway when the data dir's gateway runs, else the
 * apiserver's own address (a kubeconfig naming a gateway that was stopped would not connect).
 */
async function userKubeconfig(kubeconfig: string, clusterId: string, direct = false): Promise<string> {
  const gateway = direct ? undefined : await gatewayOfDataDir();
  if (!gateway) return kubeconfig;
  const [{ gatewayKubeconfig }, { gatewayRunning }] = await Promise.all([
    import("../../gateway/gateway-kubeconfig.js"),
    import("../../gateway/gateway-process.js"),
  ]);
  if (!(await gatewayRunning(dataDir()))) {
    progress(`the gateway of ${dataDir()} is not running (start the server): this kubeconfig is for this host only`);
    return kubeconfig;
  }
  return gatewayKubeconfig(kubeconfig, clusterId, gateway);
}

/** Creates a cluster with the local runtime, printing steps; shared by `runtime create` and `up`. */
export async function createLocalCluster(
  runtime: LocalRuntime,
  opts: CreateOptions,
): Promise<{ id: string; kubeconfigPath: string }> {
  if (!(opts.size in SIZE_PRESETS)) {
    throw new TempkubeError(
      "invalid-input",
      `--size must be one of ${Object.keys(SIZE_PRESETS).join(", ")}, not "${opts.size}"`,
    );
  }
  const workers = Number(opts.workers);
  const id = opts.id ?? newClusterId();
  const steps = stepPrinter();
  progress(`creating cluster ${id} (Kubernetes ${opts.version}, ${opts.size}, ${workers} worker(s))`);
  const kubelet = runtime.kubeletFor(opts.version);
  if (kubelet) progress(`  ${kubelet.reason}`);
  const started = Date.now();
  const { credentials } = await runtime.provision(
    { id, kubernetesVersion: opts.version, size: opts.size as SizePreset, workers, privileged: !!opts.privileged },
    steps.onStep,
  );
  steps.done();
  const kubeconfigPath = opts.kubeconfig ?? `${process.cwd()}/kubeconfig-${id}`;
  await writeFile(kubeconfigPath, await userKubeconfig(credentials.tenantKubeconfig, id), { mode: 0o600 });
  progress(`cluster ${id} ready in ${((Date.now() - started) / 1000).toFixed(1)}s; kubeconfig: ${kubeconfigPath}`);
  return { id, kubeconfigPath };
}

function createOptions(cmd: Command): Command {
  return cmd
    .option("--id <id>", "cluster id (3-16 lowercase letters/digits); generated when absent")
    .option("--version <minor>", "Kubernetes version", DEFAULT_KUBERNETES_MINOR)
    .option("--size <preset>", `size preset: ${Object.keys(SIZE_PRESETS).join(", ")}`, DEFAULT_SIZE)
    .option("--workers <n>", "worker nodes besides the control plane", "0")
    .option("--privileged", "allow privileged pods (Pod Security 'privileged' instead of 'baseline')")
    .option("--kubeconfig <file>", "where to write the tenant kubeconfig (default ./kubeconfig-<id>)")
    .option(
      "--cluster-egress <mode>",
      "what the cluster may reach outside the host: internet (NAT through the host's default route; never other clusters, the host's own services or link-local addresses) or none",
      DEFAULT_CLUSTER_EGRESS,
    );
}

export function registerRuntime(program: Command): void {
  /** The data dir's runtime without its gateway's domain: enough for what these commands do. */
  const runtime = async () => new (await import("../../runtime/local/local-runtime.js")).LocalRuntime();
  const group = program
    .command("runtime")
    .description("Drive the local runtime directly, without the server (operators and debugging)");

  createOptions(group.command("create").description("Create a cluster and wait until it is ready"))
    .addHelpText(
      "after",
      "\nExample:\n  $ sudo bin/tempkube runtime create --version 1.34 --kubeconfig ./kc && kubectl --kubeconfig ./kc get nodes",
    )
    .action(async (opts: CreateOptions) => {
      const { id } = await createLocalCluster(await localRuntime(opts.clusterEgress), opts);
      process.stdout.write(`${id}\n`);
    });

  group
    .command("list")
    .description("List clusters on this host")
    .action(async () => {
      const rows = [["ID", "PHASE", "COMPONENTS RUNNING"]];
      const local = await runtime();
      for (const id of await local.list()) {
        const s = await local.status(id);
        rows.push([id, s.phase, `${s.components.filter((c) => c.running).length}/${s.components.length}`]);
      }
      process.stdout.write(table(rows));
    });

  group
    .command("status <id>")
    .description("Show a cluster's phase and its components")
    .action(async (id: string) => {
      process.stdout.write(`${JSON.stringify(await (await runtime()).status(id), null, 2)}\n`);
    });

  group
    .command("stop <id>")
    .description("Stop every process of a cluster; its state stays on disk")
    .action(async (id: string) => {
      await (await runtime()).stop(id);
      progress(`cluster ${id} stopped`);
    });

  group
    .command("start <id>")
    .description("Start a stopped cluster and wait until it is ready")
    .action(async (id: string) => {
      const steps = stepPrinter();
      const { timings } = await (await localRuntime()).start(id, steps.onStep);
      steps.done();
      progress(`cluster ${id} ready in ${((timings.total ?? 0) / 1000).toFixed(1)}s`);
    });

  group
    .command("destroy <id>")
    .description("Remove a cluster and everything it made on the host")
    .action(async (id: string) => {
      await (await runtime()).destroy(id);
      progress(`cluster ${id} destroyed`);
    });

  group
    .command("kubeconfig <id>")
    .description("Print the tenant kubeconfig (through the gateway when the server runs one)")
    .option("--admin", "print the admin kubeconfig instead")
    .option("--direct", "the apiserver's own address (this host only), not the gateway")
    .action(async (id: string, opts: { admin?: boolean; direct?: boolean }) => {
      const creds = await (await runtime()).credentials(id);
      const kubeconfig = opts.admin ? creds.adminKubeconfig : creds.tenantKubeconfig;
      process.stdout.write(await userKubeconfig(kubeconfig, id, opts.direct));
    });

  group
    .command("load-image <archive>")
    .description("Make an image archive (docker save / OCI) usable by every cluster, or one with --cluster")
    .option("--cluster <id>", "load into this cluster only")
    .action(async (archive: string, opts: { cluster?: string }) => {
      const { images } = await (await runtime()).loadImage(archive, opts.cluster);
      progress(
        `loaded ${archive}${opts.cluster ? ` into ${opts.cluster}` : " for every cluster"}: ${images.join(", ") || "(unnamed image)"}`,
      );
    });
}

export function registerUp(program: Command): void {
  createOptions(program.command("up"))
    .description("Create a cluster, keep it while this command runs, destroy it on Ctrl-C")
    .addHelpText("after", "\nExample:\n  $ sudo bin/tempkube up --workers 1")
    .action(async (opts: CreateOptions) => {
      const runtime = await localRuntime(opts.clusterEgress);
      // Ctrl-C may come while the cluster is still being made: remember it, never leave a half-made cluster.
      const interrupted = new Promise<void>((resolve) => {
        process.once("SIGINT", resolve);
        process.once("SIGTERM", resolve);
      });
      let wantsExit = false;
      void interrupted.then(() => {
        wantsExit = true;
        progress("interrupted; the cluster is destroyed as soon as it is made");
      });
      const { id, kubeconfigPath } = await createLocalCluster(runtime, opts);
      if (!wantsExit) {
        progress(`try: bin/tempkube kubectl --kubeconfig ${kubeconfigPath} get pods -A`);
        progress("press Ctrl-C to destroy the cluster");
        // Signal listeners alone do not keep node's event loop alive.
        const keepAlive = setInterval(() => undefined, 1 << 30);
        await interrupted;
        clearInterval(keepAlive);
      }
      progress(`destroying cluster ${id}`);
      await runtime.destroy(id);
      progress(`cluster ${id} destroyed`);
    });
}
