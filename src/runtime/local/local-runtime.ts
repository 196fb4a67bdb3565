import { existsSync } from "node:fs";
import { mkdir, readFile, rm } from "node:fs/promises";
import { availableParallelism } from "node:os";
import pLimit, { type LimitFunction } from "p-limit";
import { validateSpec, type ClusterSpec } from "../../core/cluster-spec.js";
import { DEFAULT_CLUSTER_DOMAIN } from "../../gateway/gateway-files.js";
import { refuseUnlessRoomFor } from "../../host/host-budgets.js";
import { unmountAll } from "../../host/mounts.js";
import { TempkubeError } from "../../util/errors.js";
import { logger } from "../../util/log.js";
import { dataDir } from "../../util/paths.js";
import type { ClusterCredentials, ClusterRuntimeStatus, FreezeOutcome, RuntimeDriver, StepTimings } from "../driver.js";
import { AddressRanges } from "./address-ranges.js";
import { bootContext, firstBoot, restart, type BootContext } from "./boot-steps.js";
import { clusterCgroup, isFrozen, killAll, removeCgroup, setupClusterCgroups } from "./cgroups.js";
import { clusterReleases, plannedReleases, type ClusterReleases } from "./cluster-releases.js";
import {
  ensureApiServerCertificate,
  ensureAuthorizationAssets,
  writeContainerdConfig,
  ensureFrontProxyAssets,
  nodeName,
  writeClusterAssets,
} from "./cluster-assets.js";
import { listClusters, readState, writeState, type LocalClusterState } from "./cluster-state.js";
import { ensureDatastoreTemplate, seedDatastore } from "./datastore-template.js";
import { describeFailure } from "./failure-diagnosis.js";
import { freezeCluster, thawCluster } from "./freeze.js";
import { releaseOrphanedRuncState, releaseTaskState } from "./task-state.js";
import { adoptRoutes, clusterRoute, removeRoute, writeRoute } from "./gateway-route.js";
import { DEFAULT_CLUSTER_EGRESS, type ClusterEgress } from "./host-firewall.js";
import { HostRegistry } from "./host-registry.js";
import { archiveImages } from "./image-references.js";
import { ClusterLayout, clustersDir, deepestSocketPath, MAX_SOCKET_PATH } from "./layout.js";
import { planNetwork, setupNetwork, teardownNetwork } from "./network.js";
import { ctrImport, seedNodes } from "./node-images.js";
import { StepTimer } from "./step-timer.js";
import { failOnCrashLoop, Supervisor } from "./supervisor.js";

const STOP_GRACE_MS = 500;
const READY_TIMEOUT_MS = Number(process.env.TEMPKUBE_READY_TIMEOUT_MS ?? 180_000);

/**
 * The local runtime: each cluster is a set of upstream processes on this host, isolated by
 * network namespaces, its own PKI, datastore, containerd and cgroup. See DESIGN.md.
 */
export class LocalRuntime implements RuntimeDriver {
  private readonly base: string;
  private readonly readyTimeoutMs: number;

  private readonly ranges: AddressRanges;
  private readonly clusterEgress: ClusterEgress;
  private readonly clusterDomain: string;
  private readonly compressFrozen: boolean;
  /** Turns for boots (the constructor's concurrentBoots). */
  private readonly bootSlots: LimitFunction;

  /**
   * clusterEgress: what clusters made by this runtime may reach outside the host (recorded in each cluster's state).
   * clusterDomain: clusters are named `<id>.<clusterDomain>` under the gateway (apiserver certificate,
   * LoadBalancer hostnames); a cluster started under another domain is renamed at that start.
   */
  constructor(
    options: {
      dataDir?: string;
      readyTimeoutMs?: number;
      clusterEgress?: ClusterEgress;
      clusterDomain?: string;
      /** Whether a frozen cluster's memory goes to compressed swap in memory (freeze.ts); default true. */
      compressFrozen?: boolean;
      /** Boots run at once; the others wait their turn (default: one per CPU). */
      concurrentBoots?: number;
    } = {},
  ) {
    this.compressFrozen = options.compressFrozen ?? true;
    this.bootSlots = pLimit(options.concurrentBoots ?? Math.max(1, availableParallelism()));
    this.base = options.dataDir ?? dataDir();
    this.readyTimeoutMs = options.readyTimeoutMs ?? READY_TIMEOUT_MS;
    this.clusterEgress = options.clusterEgress ?? DEFAULT_CLUSTER_EGRESS;
    this.clusterDomain = options.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN;
    this.ranges = new AddressRanges();
  }

  private layout(id: string): ClusterLayout {
    return new ClusterLayout(id, clustersDir(this.base));
  }

  private supervisor(layout: ClusterLayout): Supervisor {
    return new Supervisor(layout.runDir, layout.logDir);
  }

  /** Where images loaded for every cluster go, and every node pulls from. */
  get registry(): HostRegistry {
    return new HostRegistry(this.base);
  }

  async readState(id: string): Promise<LocalClusterState> {
    return readState(this.layout(id));
  }

  async list(): Promise<string[]> {
    return listClusters(this.base);
  }

  /**
   * Gives the gateway a route for every cluster of the data dir that has none (made before
   * routes existed), and drops routes of clusters that are gone; for the server's start.
   */
  async adoptRoutes(): Promise<void> {
    await adoptRoutes(this.base);
  }

  /** For the server's start: runc state in /run that an older tempkube left for this data dir's clusters (task-state.ts). */
  async releaseOrphanedTaskState(): Promise<void> {
    const released = await releaseOrphanedRuncState(this.base);
    if (released > 0) logger.info({ released }, "runc state of ended containers removed from /run");
  }

  // ---------------------------------------------------------------- provision

  async provision(
    spec: ClusterSpec,
    onStep?: (step: string) => void,
  ): Promise<{ credentials: ClusterCredentials; timings: StepTimings }> {
    const problems = validateSpec(spec);
    if (problems.length) throw new TempkubeError("invalid-input", problems.join("; "));
    const releases = clusterReleases(spec.kubernetesVersion);
    const release = releases.controlPlane;
    const layout = this.layout(spec.id);
    if (existsSync(layout.root)) throw new TempkubeError("conflict", `cluster ${spec.id} already exists`);
    const socket = deepestSocketPath(
      layout,
      Array.from({ length: spec.workers + 1 }, (_, k) => nodeName(spec.id, k)),
    );
    if (socket.length > MAX_SOCKET_PATH) {
      throw new TempkubeError(
        "invalid-input",
        `the data dir ${this.base} is too deep for cluster id ${spec.id}: the kubelet's socket ` +
          `${socket} would be ${socket.length} bytes, over the ${MAX_SOCKET_PATH} a unix socket path allows; use a shorter id or data dir`,
      );
    }
    await refuseUnlessRoomFor(spec.workers + 1);
    const steps = new StepTimer("reserve address range", onStep);
    await mkdir(layout.root, { recursive: true });
    try {
      const index = await this.reserveIndex(spec.id);
      const names = Array.from({ length: spec.workers + 1 }, (_, k) => nodeName(spec.id, k));
      const network = planNetwork(spec.id, index, names, this.clusterEgress);
      const state: LocalClusterState = {
        id: spec.id,
        spec,
        kubernetesVersion: release.version,
        ...kubeletVersionField(releases),
        network,
        phase: "provisioning",
        createdAt: new Date().toISOString(),
        clusterDomain: this.clusterDomain,
      };
      await writeState(layout, state);
      steps.mark("certificates and configuration");
      await writeClusterAssets(layout, spec.id, network, spec.privileged, this.clusterDomain);
      steps.mark("network");
      await setupNetwork(spec.id, network);
      steps.mark("cgroups");
      await setupClusterCgroups(spec);
      steps.mark("image store");
      await seedNodes(
        this.base,
        layout,
        network.nodes.map((n) => n.name),
      );
      steps.mark("datastore");
      await seedDatastore(await ensureDatastoreTemplate(this.base, release), layout.kineDir);
      await this.boot(firstBoot, state, layout, releases, steps);
      const timings = steps.finish();
      state.phase = "running";
      await writeState(layout, state);
      await writeRoute(this.base, clusterRoute(state, layout, "running"));
      return { credentials: await this.credentials(spec.id), timings };
    } catch (err) {
      const failure = await describeFailure(this.supervisor(layout), spec.id, steps.step, err);
      logger.warn({ clusterId: spec.id, step: steps.step }, "provision failed; cleaning up");
      // For debugging the runtime itself: keep what failed, to be inspected and destroyed by hand.
      if (process.env.TEMPKUBE_KEEP_FAILED) throw failure;
      await this.destroy(spec.id).catch((e: unknown) =>
        logger.error({ err: e }, "cleanup after failed provision failed"),
      );
      throw failure;
    }
  }

  /**
   * Refuses, before anything is recorded, a version this host cannot make clusters of now:
   * not offered, not installed (409, naming the command) or not runnable on its cgroup version.
   */
  checkVersion(kubernetesVersion: string): void {
    clusterReleases(kubernetesVersion);
  }

  /** The kubelet this host's nodes of that version run, when not the control plane's (core/kubelet-policy.ts). */
  kubeletFor(kubernetesVersion: string): { version: string; reason: string } | undefined {
    const plan = plannedReleases(kubernetesVersion);
    if (!plan || "refused" in plan || plan.kubelet === plan.controlPlane) return undefined;
    return { version: plan.kubelet.version, reason: plan.reason };
  }

  /**
   * Cluster index = the /24 it owns, reserved host-wide (every tempkube instance on the host,
   * whatever its data dir, reserves in one place). What a stale reservation's owner left (its
   * data dir is gone) is swept before the index is reused: its links, and its namespaces and
   * rules unless another live cluster has the same id.
   */
  private async reserveIndex(id: string): Promise<number> {
    await this.ranges.adoptLegacy(this.base);
    return this.ranges.reserve({ dataDir: this.base, clusterId: id }, async (stale) => {
      logger.info(
        { index: stale.index, owner: stale },
        "reclaiming the address range of a cluster whose data dir is gone",
      );
      await teardownNetwork(stale.clusterId, stale.index, stale.idInUse);
    });
  }

  /** The index this cluster holds host-wide, if any: only then are that index's links its own. */
  private async reservedIndex(id: string): Promise<number | undefined> {
    await this.ranges.adoptLegacy(this.base);
    return this.ranges.lookup({ dataDir: this.base, clusterId: id });
  }

  private async releaseIndex(id: string, index: number | undefined): Promise<void> {
    await this.ranges.release({ dataDir: this.base, clusterId: id }, index);
  }

  /** Runs a boot (first or again) over its context, ended early by a component's crash loop. */
  private async boot(
    steps: (ctx: BootContext) => Promise<void>,
    state: LocalClusterState,
    layout: ClusterLayout,
    releases: ClusterReleases,
    timer: StepTimer,
  ): Promise<void> {
    const sup = this.supervisor(layout);
    // A boot is short of CPU even alone (~10 CPU-seconds in 8 s on 2 cores): ten at once on
    // 2 cores all took 144 s, 15× one, each waiting out its polls and its clients' backoffs
    // while the others ran. In turns, each has the CPU it needs; the wait is a step of its
    // own, and the boot's deadline counts from its turn (bootContext).
    if (this.bootSlots.activeCount >= this.bootSlots.concurrency) timer.mark("waiting for other boots");
    await this.bootSlots(() => this.bootNow(steps, state, layout, releases, timer, sup));
  }

  private async bootNow(
    steps: (ctx: BootContext) => Promise<void>,
    state: LocalClusterState,
    layout: ClusterLayout,
    releases: ClusterReleases,
    timer: StepTimer,
    sup: Supervisor,
  ): Promise<void> {
    await failOnCrashLoop(sup, async () =>
      steps(
        await bootContext({
          state,
          layout,
          release: releases.controlPlane,
          kubeletRelease: releases.kubelet,
          sup,
          registry: this.registry,
          steps: timer,
          readyTimeoutMs: this.readyTimeoutMs,
        }),
      ),
    );
  }

  // ---------------------------------------------------------------- images

  /**
   * For every cluster (no id): into the host registry, from which every node pulls what it
   * lacks; no cluster is touched. Into one cluster: imported into each of its nodes, so it
   * is there even for imagePullPolicy: Never.
   */
  async loadImage(archivePath: string, clusterId?: string): Promise<{ images: string[] }> {
    if (!existsSync(archivePath))
      throw new TempkubeError("invalid-input", `image archive ${archivePath} does not exist`);
    if (!clusterId) {
      await this.registry.ensureRunning();
      return { images: await this.registry.push(archivePath) };
    }
    const state = await this.readState(clusterId);
    if (state.phase !== "running")
      throw new TempkubeError("conflict", `cluster ${clusterId} is ${state.phase}; start it to load an image into it`);
    // Its containerds must answer (a frozen cluster's do not).
    await this.thaw(clusterId);
    const images = await archiveImages(archivePath).then(
      (list) => list.map((i) => i.reference),
      () => [] as string[],
    );
    const layout = this.layout(clusterId);
    for (const node of state.network.nodes) await ctrImport(layout.node(node.name).containerdSocket, archivePath);
    return { images };
  }

  // ---------------------------------------------------------------- lifecycle

  async start(clusterId: string, onStep?: (step: string) => void): Promise<{ timings: StepTimings }> {
    const state = await this.readState(clusterId);
    const layout = this.layout(clusterId);
    // Chosen again at every start: the host's cgroup version may have changed since the last.
    const releases = clusterReleases(state.kubernetesVersion);
    if (state.phase !== "running") await refuseUnlessRoomFor(state.network.nodes.length);
    const steps = new StepTimer("network", onStep);
    // A start of a running (frozen) cluster checks it over like any other: its processes must answer.
    if (state.phase === "running") await (await thawCluster(layout, state)).managerContinued;
    try {
      await setupNetwork(clusterId, state.network);
      await setupClusterCgroups(state.spec);
      await ensureAuthorizationAssets(layout);
      for (const node of state.network.nodes) await writeContainerdConfig(layout.node(node.name));
      if (await ensureFrontProxyAssets(layout))
        logger.info({ clusterId }, "front-proxy CA and client certificate written (API aggregation)");
      if (await ensureApiServerCertificate(layout, clusterId, state.network, this.clusterDomain))
        logger.info(
          { clusterId, clusterDomain: this.clusterDomain },
          "apiserver certificate issued for the cluster domain",
        );
      state.clusterDomain = this.clusterDomain;
      delete state.kubeletVersion;
      Object.assign(state, kubeletVersionField(releases));
      await this.boot(restart, state, layout, releases, steps);
    } catch (err) {
      state.phase = "failed";
      await writeState(layout, state);
      // Not ready: no connection goes to it (it may have been routed as running before this start).
      await writeRoute(this.base, clusterRoute(state, layout, "stopped"));
      throw await describeFailure(this.supervisor(layout), clusterId, steps.step, err);
    }
    const timings = steps.finish();
    state.phase = "running";
    await writeState(layout, state);
    await writeRoute(this.base, clusterRoute(state, layout, "running"));
    return { timings };
  }

  /** Ends every process of the cluster (pods included) and releases its mounts; disk state stays. */
  async stop(clusterId: string): Promise<void> {
    const state = await this.readState(clusterId);
    const layout = this.layout(clusterId);
    // Before the processes go: the gateway stops routing to it (or holds a connection to wake it).
    await writeRoute(this.base, clusterRoute(state, layout, "stopped"));
    await this.stopProcesses(layout);
    state.phase = "stopped";
    await writeState(layout, state);
  }

  /** Freezes a running cluster with nothing of the tenant's in it (freeze.ts). */
  async freeze(clusterId: string): Promise<FreezeOutcome> {
    const state = await this.readState(clusterId);
    if (state.phase !== "running") return { frozen: false, reason: `the cluster is ${state.phase}` };
    return freezeCluster(this.layout(clusterId), state, { compress: this.compressFrozen });
  }

  /** Returns once its processes run; the controller manager continues in the background (freeze.ts). */
  async thaw(clusterId: string): Promise<void> {
    const state = await this.readState(clusterId);
    const { managerContinued } = await thawCluster(this.layout(clusterId), state);
    managerContinued.catch((err: unknown) =>
      logger.warn({ clusterId, err: String(err) }, "the controller manager's continue after a thaw failed"),
    );
  }

  /** `idInUse`: a live cluster of another data dir has this id, so the cgroup named by it is that one's. */
  private async stopProcesses(layout: ClusterLayout, idInUse = false): Promise<void> {
    // Frozen processes take no signal, SIGKILL included, until thawed; a stopped controller
    // manager would not see its SIGTERM either. No lease wait: it is going anyway.
    if (!idInUse) {
      const state = await this.readState(layout.clusterId).catch(() => undefined);
      if (state) await thawCluster(layout, state, { waitForLeases: false });
    }
    // Everything on disk is crash-safe (SQLite, containerd's bolt stores), so a short
    // grace period suffices; the apiserver alone would otherwise linger on open watches.
    await this.supervisor(layout).stopAll(STOP_GRACE_MS);
    if (!idInUse) await killAll(clusterCgroup(layout.clusterId));
    await unmountAll(layout.root);
    // Once nothing of the cluster runs (every shim included): what its containerds' tasks left in /run.
    if (!idInUse) await releaseTaskState(layout.root);
    if (!idInUse) await removeCgroup(clusterCgroup(layout.clusterId), true);
  }

  async destroy(clusterId: string): Promise<void> {
    const layout = this.layout(clusterId);
    const state = await this.readState(clusterId).catch(() => undefined);
    // What is named by the id alone (cgroup, namespaces, rules) is left alone when a live
    // cluster of another data dir has the id (provision refuses such an id, then destroys
    // what it made, which must not be the other's); links go by index, and only if this
    // cluster holds that index.
    const idInUse = await this.ranges.idHeldElsewhere({ dataDir: this.base, clusterId });
    // First, so no connection is routed to what is going (routes are per data dir: always this one's).
    await removeRoute(this.base, clusterId);
    await this.stopProcesses(layout, idInUse);
    const index = await this.reservedIndex(clusterId);
    if (state && index !== undefined && state.network.index !== index) {
      logger.warn(
        { clusterId, stateIndex: state.network.index, reserved: index },
        "the cluster's state and its reservation disagree; the reservation wins",
      );
    }
    await teardownNetwork(clusterId, index, idInUse);
    if (!idInUse) await removeCgroup(clusterCgroup(clusterId));
    // A boot still under way in another process may be writing into it (ENOTEMPTY): retried.
    await rm(layout.root, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
    await this.releaseIndex(clusterId, index);
  }

  async status(clusterId: string): Promise<ClusterRuntimeStatus> {
    const state = await this.readState(clusterId).catch(() => undefined);
    if (!state) return { clusterId, phase: "absent", components: [] };
    const sup = this.supervisor(this.layout(clusterId));
    const names = await sup.names();
    const components = await Promise.all(names.map(async (name) => ({ name, running: await sup.isRunning(name) })));
    const frozen = state.phase === "running" && (await isFrozen(clusterCgroup(clusterId)));
    return { clusterId, phase: state.phase, components, ...(frozen ? { frozen } : {}) };
  }

  async credentials(clusterId: string): Promise<ClusterCredentials> {
    const state = await this.readState(clusterId);
    const layout = this.layout(clusterId);
    return {
      clusterId,
      server: `https://${state.network.nodes[0].ip}:6443`,
      tenantKubeconfig: await readFile(layout.kubeconfig("tenant"), "utf8"),
      adminKubeconfig: await readFile(layout.kubeconfig("admin"), "utf8"),
    };
  }
}

/** The state's record of the nodes' kubelet: only when it is not the control plane's release. */
function kubeletVersionField(releases: ClusterReleases): Pick<LocalClusterState, "kubeletVersion"> {
  return releases.kubelet === releases.controlPlane ? {} : { kubeletVersion: releases.kubelet.version };
}
