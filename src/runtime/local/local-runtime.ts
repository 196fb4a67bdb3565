import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { validateSpec, SIZE_PRESETS, type ClusterSpec, type SizeLimits } from "../../core/cluster-spec.js";
import { refuseUnlessRoomFor } from "../../host/host-budgets.js";
import { unmountAll, mountsUnder } from "../../host/mounts.js";
import { IMAGES, findRelease, type ImageKey, type KubernetesRelease } from "../../setup/catalogue.js";
import { imageArchive, kubernetesBinary } from "../../setup/installer.js";
import { run, succeeds } from "../../util/exec.js";
import { TempkubeError } from "../../util/errors.js";
import { logger } from "../../util/log.js";
import { dataDir } from "../../util/paths.js";
import type { ClusterCredentials, ClusterRuntimeStatus, RuntimeDriver, StepTimings } from "../driver.js";
import { coreDnsConfigMap, coreDnsService, localPath, memoryQuantity, nodeCapacityPolicy, rootCaConfigMap } from "./addon-manifests.js";
import { tenantPolicies, tenantRbac } from "./tenant-guards.js";
import { applyManifests } from "./apply-manifests.js";
import { STARTING_TAINT } from "./component-configs.js";
import { clusterCgroup, ensureCgroup, killAll, leftoverCgroups, memoryUsage, removeCgroup, setCpuLimit, setMemoryLimit, pidsIn } from "./cgroups.js";
import { ensureAuthorizationAssets, kubeletCgroupRoot, nodeName, writeClusterAssets } from "./cluster-assets.js";
import { apiServerCommands, containerdCommand, controllerCommands, kubeletCommand, kubeProxyCommand, systemCgroup, type ClusterCommandsInput } from "./component-commands.js";
import { fromCache, KubeApi } from "./kube-api.js";
import { ensureDatastoreTemplate, READYZ_BEFORE_BOOTSTRAP_HOOKS, seedDatastore } from "./datastore-template.js";
import { HostRegistry } from "./host-registry.js";
import { AddressRanges } from "./address-ranges.js";
import { DEFAULT_CLUSTER_EGRESS, type ClusterEgress } from "./host-firewall.js";
import { archiveImages } from "./image-references.js";
import { ensureImageTemplate, seedContainerdRoot } from "./image-template.js";
import { ClusterLayout, type NodeLayout } from "./layout.js";
import { StepTimer } from "./step-timer.js";
import { DNS_SERVICE_IP, KUBERNETES_SERVICE_IP, leftoverNetwork, planNetwork, setupNetwork, teardownNetwork, type ClusterNetwork, type NodeNetwork } from "./network.js";
import { currentServiceEndpoints, serviceRulesMatch } from "./service-endpoints.js";
import { CrashLoopError, failOnCrashLoop, Supervisor } from "./supervisor.js";
import { waitFor } from "./wait.js";

/** What the runtime keeps about a cluster on disk (state.json); enough to adopt it after a restart. */
export interface LocalClusterState {
  id: string;
  spec: ClusterSpec;
  kubernetesVersion: string;
  network: ClusterNetwork;
  phase: "provisioning" | "running" | "stopped" | "failed";
  createdAt: string;
}

const STOP_GRACE_MS = 500;
const NOT_READY_TAINT = "node.kubernetes.io/not-ready";
const PODS_SETTLE_MS = 60_000;
const READY_TIMEOUT_MS = Number(process.env.TEMPKUBE_READY_TIMEOUT_MS ?? 180_000);

type Condition = { type: string; status: string; lastHeartbeatTime?: string; lastTransitionTime?: string };
type ConditionList = { items?: { status?: { conditions?: Condition[] } }[] };
type Resources = Record<string, string>;
type NodeList = { items?: { metadata?: { name?: string }; spec?: { taints?: { key: string }[] }; status?: { conditions?: Condition[]; capacity?: Resources; allocatable?: Resources } }[] };

/** The condition is True and was reported at or after `since`. */
function isFresh(obj: { status?: { conditions?: Condition[] } }, type: string, since: number, stamp: "lastHeartbeatTime" | "lastTransitionTime"): boolean {
  const c = obj.status?.conditions?.find((x) => x.type === type);
  return c?.status === "True" && Date.parse(c[stamp] ?? "") >= since;
}

/** Archives a node's containerd holds, by fingerprint (size:mtime), so none is imported twice. */
async function importedImages(nl: NodeLayout): Promise<Record<string, string>> {
  return JSON.parse(await readFile(nl.importedImagesFile, "utf8").catch(() => "{}")) as Record<string, string>;
}

async function recordImported(nl: NodeLayout, fingerprints: Record<string, string>): Promise<void> {
  await writeFile(nl.importedImagesFile, JSON.stringify({ ...(await importedImages(nl)), ...fingerprints }, null, 2));
}

/** Which component logs explain a failure in each step. */
const STEP_COMPONENTS: Record<string, RegExp> = {
  "apiserver ready": /^(kine|kube-apiserver)$/,
  "apiserver bootstrap reconciled": /^kube-apiserver$/,
  "addons applied": /^kube-apiserver$/,
  "node capacity policy": /^kube-apiserver$/,
  "images imported": /^containerd-/,
  "nodes registered": /^(kubelet-|containerd-)/,
  "controller manager started": /^kube-apiserver$/,
  "nodes ready": /^(kubelet-|containerd-|kube-controller-manager)/,
  "default service account": /^kube-controller-manager$/,
  "coredns available": /^(kubelet-|kube-scheduler|kube-proxy-)/,
  "cluster dns answers": /^kube-proxy-/,
  "service rules written": /^kube-proxy-/,
};

/**
 * The local runtime: each cluster is a set of upstream processes on this host, isolated by
 * network namespaces, its own PKI, datastore, containerd and cgroup. See DESIGN.md.
 */
export class LocalRuntime implements RuntimeDriver {
  private readonly base: string;
  private readonly readyTimeoutMs: number;

  private readonly ranges: AddressRanges;
  private readonly clusterEgress: ClusterEgress;

  /** clusterEgress: what clusters made by this runtime may reach outside the host (recorded in each cluster's state). */
  constructor(options: { dataDir?: string; readyTimeoutMs?: number; clusterEgress?: ClusterEgress } = {}) {
    this.base = options.dataDir ?? dataDir();
    this.readyTimeoutMs = options.readyTimeoutMs ?? READY_TIMEOUT_MS;
    this.clusterEgress = options.clusterEgress ?? DEFAULT_CLUSTER_EGRESS;
    this.ranges = new AddressRanges();
  }

  private layout(id: string): ClusterLayout {
    return new ClusterLayout(id, join(this.base, "clusters"));
  }

  private supervisor(layout: ClusterLayout): Supervisor {
    return new Supervisor(layout.runDir, layout.logDir);
  }

  /** Where images loaded for every cluster go, and every node pulls from. */
  get registry(): HostRegistry {
    return new HostRegistry(this.base);
  }

  async readState(id: string): Promise<LocalClusterState> {
    const text = await readFile(this.layout(id).stateFile, "utf8").catch(() => undefined);
    if (!text) throw new TempkubeError("not-found", `cluster ${id} does not exist on this host`);
    return JSON.parse(text) as LocalClusterState;
  }

  private async writeState(state: LocalClusterState): Promise<void> {
    const file = this.layout(state.id).stateFile;
    await writeFile(`${file}.tmp`, JSON.stringify(state, null, 2));
    await rename(`${file}.tmp`, file);
  }

  async list(): Promise<string[]> {
    const entries = await readdir(join(this.base, "clusters")).catch(() => [] as string[]);
    return entries.filter((id) => existsSync(this.layout(id).stateFile)).sort();
  }

  // ---------------------------------------------------------------- provision

  async provision(spec: ClusterSpec, onStep?: (step: string) => void): Promise<{ credentials: ClusterCredentials; timings: StepTimings }> {
    const problems = validateSpec(spec);
    if (problems.length) throw new TempkubeError("invalid-input", problems.join("; "));
    const release = this.release(spec.kubernetesVersion);
    const layout = this.layout(spec.id);
    if (existsSync(layout.root)) throw new TempkubeError("conflict", `cluster ${spec.id} already exists`);
    await refuseUnlessRoomFor(spec.workers + 1);
    const steps = new StepTimer("reserve address range", onStep);
    await mkdir(layout.root, { recursive: true });
    try {
      const index = await this.reserveIndex(spec.id);
      const names = Array.from({ length: spec.workers + 1 }, (_, k) => nodeName(spec.id, k));
      const network = planNetwork(spec.id, index, names, this.clusterEgress);
      const state: LocalClusterState = {
        id: spec.id, spec, kubernetesVersion: release.version, network, phase: "provisioning", createdAt: new Date().toISOString(),
      };
      await this.writeState(state);
      steps.mark("certificates and configuration");
      await writeClusterAssets(layout, spec.id, network, spec.privileged);
      steps.mark("network");
      await setupNetwork(spec.id, network);
      steps.mark("cgroups");
      await this.setupCgroups(spec);
      steps.mark("image store");
      await this.seedNodes(state, layout);
      steps.mark("datastore");
      await seedDatastore(await ensureDatastoreTemplate(this.base, release), layout.kineDir);
      await failOnCrashLoop(this.supervisor(layout), () => this.bringUp(state, layout, release, true, steps));
      const timings = steps.finish();
      state.phase = "running";
      await this.writeState(state);
      return { credentials: await this.credentials(spec.id), timings };
    } catch (err) {
      const failure = await this.describeFailure(layout, steps.step, err);
      logger.warn({ clusterId: spec.id, step: steps.step }, "provision failed; cleaning up");
      // For debugging the runtime itself: keep what failed, to be inspected and destroyed by hand.
      if (process.env.TEMPKUBE_KEEP_FAILED) throw failure;
      await this.destroy(spec.id).catch((e: unknown) => logger.error({ err: e }, "cleanup after failed provision failed"));
      throw failure;
    }
  }

  private release(version: string): KubernetesRelease {
    const release = findRelease(version);
    if (!release) throw new TempkubeError("invalid-input", `kubernetesVersion "${version}" is not offered; see \`tempkube versions\``);
    if (!existsSync(kubernetesBinary(release, "kube-apiserver"))) {
      throw new TempkubeError("setup", `Kubernetes ${release.version} is not installed; run: bin/tempkube versions install ${release.minor}`);
    }
    return release;
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
      logger.info({ index: stale.index, owner: stale }, "reclaiming the address range of a cluster whose data dir is gone");
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


  private async setupCgroups(spec: ClusterSpec): Promise<void> {
    await ensureCgroup(systemCgroup(spec.id));
    for (let k = 0; k <= spec.workers; k++) await ensureCgroup(kubeletCgroupRoot(spec.id, k));
    const limits = SIZE_PRESETS[spec.size];
    // Enforced where the host can: a preset larger than the host is capped by the host anyway.
    await setMemoryLimit(clusterCgroup(spec.id), Math.min(limits.memoryBytes, totalmem()));
    await setCpuLimit(clusterCgroup(spec.id), limits.cpus, cpus().length);
  }

  /** Starts every process and waits until the cluster is ready (shared by provision and start). */
  private async bringUp(state: LocalClusterState, layout: ClusterLayout, release: KubernetesRelease, firstBoot: boolean,
    steps: StepTimer): Promise<void> {
    const mark = (step: string) => steps.mark(step);
    const input: ClusterCommandsInput = { clusterId: state.id, release, layout, net: state.network };
    const sup = this.supervisor(layout);
    await mkdir(layout.runDir, { recursive: true });
    await mkdir(layout.logDir, { recursive: true });
    // Conditions written before a stop are still in the store: only what is reported after
    // this moment (second resolution, as the API keeps it) counts as ready.
    const since = Math.floor(Date.now() / 1000) * 1000;
    // One deadline for the whole boot, not one per step: a cluster destroyed underneath a
    // boot (by another process) would otherwise keep it waiting out every step in turn.
    const deadline = Date.now() + this.readyTimeoutMs;
    const left = () => Math.max(0, deadline - Date.now());
    mark("processes started");
    // Images loaded for every cluster come from here; the cluster runs without it otherwise.
    await this.registry.ensureRunning().catch((err: unknown) => logger.warn({ err }, "the host image registry is not running"));
    for (const node of state.network.nodes) {
      // Nothing runs on the node now, so no address is really in use.
      await rm(`${layout.node(node.name).root}/cni-ipam`, { recursive: true, force: true });
      await sup.start(containerdCommand(input, node));
    }
    for (const c of apiServerCommands(input)) await sup.start(c);
    mark("images imported");
    const current = await this.fingerprints(this.imageArchives());
    await Promise.all(state.network.nodes.map((node) => this.importImages(layout, node.name, current)));
    // A pod that connects to a Service before kube-proxy's rules exist keeps an un-NATed
    // conntrack entry and hangs for its whole connect timeout, so no pod may start first.
    // On a restart whose node namespaces kept the rules of the last boot, that holds from
    // the start, and the kubelets start now, beside the apiserver: a kubelet watches its
    // pods only once its Node cache has synced, which it checks once a second
    // (pkg/kubelet/config/apiserver.go), so one started before the apiserver serves is
    // running pods a second sooner than one started after. kube-proxy, on the contrary,
    // starts once the apiserver serves: refused at first, it would wait out client-go's
    // retry backoff (0.8 s, then 1.6 s).
    const nodes = state.network.nodes;
    const kubeletsEarly = !firstBoot && (await Promise.all(nodes.map((n) => this.serviceRulesPresent(n)))).every(Boolean);
    if (kubeletsEarly) {
      await waitFor("containerd", async () => nodes.every((n) => existsSync(layout.node(n.name).containerdSocket)), 30_000, 20);
      for (const node of nodes) await sup.start(kubeletCommand(input, node));
    }
    const api = await this.adminApi(layout, state);
    mark("apiserver ready");
    await waitFor("kube-apiserver /readyz", () => api.ok(READYZ_BEFORE_BOOTSTRAP_HOOKS), left(), 50);
    // Everything else starts against a ready apiserver (no client backoff to wait out),
    // but kube-controller-manager polls /healthz once a second before it starts any
    // controller, and /healthz waits for the bootstrap hooks: it starts once that passes,
    // so that its first poll does (waitFor below, in parallel with the nodes).
    const controllers = controllerCommands(input);
    for (const c of controllers.filter((c) => c.name !== "kube-controller-manager")) await sup.start(c);
    const controllerManagerStarted = waitFor("kube-apiserver /healthz", () => api.ok("/healthz"), left(), 50)
      .then(() => sup.start(controllers.find((c) => c.name === "kube-controller-manager")!));
    controllerManagerStarted.catch(() => undefined); // awaited below, like the addons
    // On every boot (clusters made before the policy get it too), and before any kubelet
    // writes its Node, so that the first status already advertises the size preset.
    mark("node capacity policy");
    await this.applyCapacityPolicy(api, state, release);
    // The tenant guards on every boot, so that a cluster made before a guard existed (or
    // before one was tightened) is held by today's at its next start.
    const addons = Promise.all(firstBoot
      ? [this.publishRootCa(api, layout, left), this.applyAddons(state, layout, release)]
      : [this.applyTenantGuards(state, layout, release)]);
    addons.catch(() => undefined); // awaited below; this only keeps an early failure from going unhandled
    // kube-proxy needs its Node object, and when it is missing polls for it once a second
    // (pkg/proxy/node.go), so on first boot it starts once its node is registered; the
    // kubelets register their nodes with a NoSchedule taint that is lifted once the rules
    // are written. On a restart without the rules (the host rebooted), the kubelets (which
    // restart pods) start once kube-proxy has written them.
    if (firstBoot) {
      for (const node of nodes) await sup.start(kubeletCommand(input, node));
      mark("nodes registered");
      await waitFor("the kubelets to register their nodes", () => this.nodesRegistered(api, nodes), left(), 50);
      for (const node of nodes) await sup.start(kubeProxyCommand(input, node));
      mark("service rules written");
      await waitFor("kube-proxy to sync its rules", () => this.kubeProxiesSynced(nodes), left(), 50);
      // Pods get the `kubernetes` Service's address in their environment (in-cluster clients
      // such as CoreDNS need it) only if it exists when they start, and the apiserver makes
      // it once all of /readyz passes, i.e. after the bootstrap hooks.
      await waitFor("kube-proxy's rules for the kubernetes Service", async () =>
        (await Promise.all(nodes.map((n) => this.serviceRouted(n, KUBERNETES_SERVICE_IP)))).every(Boolean), left(), 50);
      // CoreDNS cannot be scheduled before the starting taint goes: it starts with the
      // Corefile of this cluster's egress, not the template's.
      const dnsConfig = coreDnsConfigMap(state.network.egress ?? "none");
      const written = await api.apply(dnsConfig.path, dnsConfig.object);
      if (written.status !== 200 && written.status !== 201) throw new TempkubeError("runtime", `could not write CoreDNS's Corefile: HTTP ${written.status}`);
      await this.liftStartingTaint(api, nodes, left);
    } else {
      for (const node of nodes) await sup.start(kubeProxyCommand(input, node));
      mark("service rules written");
      await waitFor("kube-proxy to sync its rules", () => this.kubeProxiesSynced(nodes), left(), 50);
      if (!kubeletsEarly) for (const node of nodes) await sup.start(kubeletCommand(input, node));
    }
    mark("addons applied");
    await addons;
    mark("nodes ready");
    await waitFor(`${state.network.nodes.length} node(s) Ready with the size preset's capacity`,
      () => this.nodesReady(api, state.network.nodes.length, since, SIZE_PRESETS[state.spec.size]), left());
    mark("default service account");
    await waitFor("ServiceAccount default/default", () => api.ok("/api/v1/namespaces/default/serviceaccounts/default"), left());
    mark("coredns available");
    await waitFor("CoreDNS available", () => this.podsReady(api, "kube-system", "k8s-app=kube-dns", since), left());
    mark("cluster dns answers");
    // Asked only once kube-proxy leads the Service somewhere: a query sent before then is
    // lost, and the lookup would wait out its whole timeout.
    await waitFor("cluster DNS to answer through the kube-dns Service", async () =>
      await this.serviceRouted(state.network.nodes[0], DNS_SERVICE_IP) && await this.dnsAnswers(state.network.nodes[0].netnsPath), left(), 50);
    mark("controller manager started");
    await controllerManagerStarted;
    mark("apiserver bootstrap reconciled");
    await waitFor("kube-apiserver /readyz (all checks)", () => api.ok("/readyz"), left(), 50);
    if (!firstBoot) {
      mark("pods running again");
      await this.podsSettled(api, since);
      mark("service endpoints updated");
      await this.endpointsSettled(api, nodes);
    }
  }

  /** Bounded and not fatal, like podsSettled: Services lead to this boot's pods, and kube-proxy has their rules. */
  private async endpointsSettled(api: KubeApi, nodes: NodeNetwork[]): Promise<void> {
    const settled = async () => {
      const endpoints = await currentServiceEndpoints(api, nodes.map((n) => n.ip));
      if (!endpoints) {
        logger.debug("EndpointSlices do not name this boot's pods yet");
        return false;
      }
      const matching = await Promise.all(nodes.map((n) => serviceRulesMatch(n.netnsPath, endpoints).catch(() => false)));
      const settled = matching.every(Boolean);
      if (!settled) logger.debug({ ready: [...endpoints.ready], live: [...endpoints.live], matching }, "kube-proxy's rules lag");
      return settled;
    };
    try {
      await waitFor("Service endpoints and kube-proxy's rules to name this boot's pods", settled, PODS_SETTLE_MS, 50);
    } catch {
      logger.warn("some Services do not lead to this boot's pods yet after start");
    }
  }

  /** CoreDNS's workload comes with the datastore template; the rest is this cluster's own. */
  private async applyAddons(state: LocalClusterState, layout: ClusterLayout, release: KubernetesRelease): Promise<void> {
    const docs = [tenantRbac(), tenantPolicies(state.spec.privileged), coreDnsService(), localPath(layout.volumesDir)].join("---\n");
    await applyManifests(release, layout.kubeconfig("admin"), docs);
  }

  private async applyTenantGuards(state: LocalClusterState, layout: ClusterLayout, release: KubernetesRelease): Promise<void> {
    await applyManifests(release, layout.kubeconfig("admin"), [tenantRbac(), tenantPolicies(state.spec.privileged)].join("---\n"));
  }

  /**
   * Every pod's service-account volume holds the `kube-root-ca.crt` ConfigMap of its
   * namespace, and the kubelet does not start a pod without it. kube-controller-manager
   * publishes it, seconds after the scheduler can bind CoreDNS's Pod (it waits for the
   * apiserver's bootstrap hooks); tempkube writes the same object for kube-system first,
   * and the controller finds it as it would have written it.
   */
  private async publishRootCa(api: KubeApi, layout: ClusterLayout, left: () => number): Promise<void> {
    const configMap = rootCaConfigMap(await readFile(layout.pki("ca.crt"), "utf8"));
    // The apiserver makes kube-system just after it serves; until then the create is a 404.
    await waitFor("ConfigMap kube-system/kube-root-ca.crt", async () => {
      const res = await api.post("/api/v1/namespaces/kube-system/configmaps", configMap).catch(() => undefined);
      return res?.status === 201 || res?.status === 409;
    }, left(), 50);
  }

  private async applyCapacityPolicy(api: KubeApi, state: LocalClusterState, release: KubernetesRelease): Promise<void> {
    for (const { path, object } of nodeCapacityPolicy(SIZE_PRESETS[state.spec.size], release)) {
      const res = await api.apply(path, object);
      if (res.status !== 200 && res.status !== 201) {
        throw new TempkubeError("runtime", `could not apply ${path}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
      }
    }
  }

  /**
   * The capacity policy takes effect up to a second after it is written (the apiserver
   * recompiles policies at most once a second), so a kubelet that registers sooner reports
   * the host's figures, and would repeat them only at its next full report (a minute).
   * Such a node gets the preset's figures written here; the policy keeps them from then on.
   */
  private async nodesReady(api: KubeApi, expected: number, since: number, size: SizeLimits): Promise<boolean> {
    const res = await api.get<NodeList>(fromCache("/api/v1/nodes")).catch(() => undefined);
    const items = res?.status === 200 ? res.body?.items ?? [] : [];
    const preset = { cpu: String(size.cpus), memory: memoryQuantity(size.memoryBytes) };
    const advertised = (r: Resources | undefined) => r?.cpu === preset.cpu && r?.memory === preset.memory;
    let ready = items.length >= expected;
    for (const n of items) {
      // The node lifecycle controller lifts not-ready once it has seen Ready: until then no pod lands.
      if (!isFresh(n, "Ready", since, "lastHeartbeatTime") || n.spec?.taints?.some((t) => t.key === NOT_READY_TAINT)) ready = false;
      else if (!advertised(n.status?.capacity) || !advertised(n.status?.allocatable)) {
        ready = false;
        await api.patch(`/api/v1/nodes/${n.metadata?.name}/status`, { status: { capacity: preset, allocatable: preset } }).catch(() => undefined);
      }
    }
    return ready;
  }

  private async liftStartingTaint(api: KubeApi, nodes: NodeNetwork[], left: () => number): Promise<void> {
    type Node = { spec?: { taints?: { key: string; effect: string }[] } };
    for (const node of nodes) {
      const path = `/api/v1/nodes/${node.name}`;
      await waitFor(`node ${node.name} to register`, () => api.ok(path), left(), 50);
      const current = await api.get<Node>(path);
      const taints = (current.body?.spec?.taints ?? []).filter((t) => t.key !== STARTING_TAINT);
      const res = await api.patch(path, { spec: { taints } });
      if (res.status !== 200) throw new TempkubeError("runtime", `could not lift the starting taint of node ${node.name}: HTTP ${res.status}`);
    }
  }

  private async nodesRegistered(api: KubeApi, nodes: NodeNetwork[]): Promise<boolean> {
    type Node = { status?: { addresses?: unknown[] } };
    const found = await Promise.all(nodes.map((n) => api.get<Node>(`/api/v1/nodes/${n.name}`).catch(() => undefined)));
    return found.every((res) => res?.status === 200 && (res.body?.status?.addresses?.length ?? 0) > 0);
  }

  /** kube-proxy's Service rules in a node's namespace ("" when it has written none). */
  private async serviceRules(node: NodeNetwork): Promise<string> {
    return run("nsenter", [`--net=${node.netnsPath}`, "iptables", "-w", "-t", "nat", "-S", "KUBE-SERVICES"]).then((r) => r.stdout, () => "");
  }

  /** kube-proxy's rules from the last boot are still in the node's namespace. */
  private async serviceRulesPresent(node: NodeNetwork): Promise<boolean> {
    return (await this.serviceRules(node)).includes("-A KUBE-SERVICES ");
  }

  /** kube-proxy has a rule for the Service's IP (it writes one only when some endpoint is ready). */
  private async serviceRouted(node: NodeNetwork, serviceIp: string): Promise<boolean> {
    return (await this.serviceRules(node)).includes(`-d ${serviceIp}/32 `);
  }

  private async kubeProxiesSynced(nodes: NodeNetwork[]): Promise<boolean> {
    const healthy = await Promise.all(nodes.map((n) =>
      fetch(`http://${n.ip}:10256/livez`, { signal: AbortSignal.timeout(1000) }).then((r) => r.status === 200, () => false)));
    return healthy.every(Boolean);
  }

  /** A real lookup through the Service IP: CoreDNS serves and kube-proxy's rules are in place. */
  private async dnsAnswers(netnsPath: string): Promise<boolean> {
    try {
      const { stdout } = await run("nsenter", [`--net=${netnsPath}`, "timeout", "2", "busybox", "nslookup", "kubernetes.default.svc.cluster.local", DNS_SERVICE_IP]);
      // The answer's address line: "Server: 10.96.0.10" alone (no answer) contains 10.96.0.1 too.
      return stdout.split("\n").some((line) => /^Address:\s+(\S+)$/.exec(line.trim())?.[1] === KUBERNETES_SERVICE_IP);
    } catch {
      return false;
    }
  }

  /**
   * After a start, pods' conditions in the store still describe the time before the stop.
   * Waits (bounded, not fatal: a user's crash-looping pod must not fail the start) until
   * every pod that should run reports Ready anew.
   */
  private async podsSettled(api: KubeApi, since: number): Promise<void> {
    type PodList = { items?: { status?: { phase?: string; conditions?: Condition[] } }[] };
    const settled = async () => {
      const res = await api.get<PodList>(fromCache("/api/v1/pods")).catch(() => undefined);
      if (res?.status !== 200) return false;
      return (res.body?.items ?? []).filter((p) => p.status?.phase !== "Succeeded" && p.status?.phase !== "Failed")
        .every((p) => isFresh(p, "Ready", since, "lastTransitionTime"));
    };
    await waitFor("pods to run again", settled, PODS_SETTLE_MS, 50).catch(() => logger.warn("some pods are not ready after start"));
  }

  private async podsReady(api: KubeApi, ns: string, selector: string, since: number): Promise<boolean> {
    const res = await api.get<ConditionList>(fromCache(`/api/v1/namespaces/${ns}/pods?labelSelector=${encodeURIComponent(selector)}`)).catch(() => undefined);
    const items = res?.status === 200 ? res.body?.items ?? [] : [];
    return items.some((p) => isFresh(p, "Ready", since, "lastTransitionTime"));
  }

  private async adminApi(layout: ClusterLayout, state: LocalClusterState): Promise<KubeApi> {
    const [ca, cert, key] = await Promise.all([
      readFile(layout.pki("ca.crt"), "utf8"), readFile(layout.pki("admin.crt"), "utf8"), readFile(layout.pki("admin.key"), "utf8"),
    ]);
    return new KubeApi(`https://${state.network.nodes[0].ip}:6443`, { ca, cert, key });
  }

  // ---------------------------------------------------------------- images

  /** The built-in images every node holds from the start (users' images come from the host registry). */
  private imageArchives(): string[] {
    return (Object.keys(IMAGES) as ImageKey[]).map((k) => imageArchive(k));
  }

  /** New nodes start from the host's image template (no import at all). */
  private async seedNodes(state: LocalClusterState, layout: ClusterLayout): Promise<void> {
    const archives = this.imageArchives();
    const template = await ensureImageTemplate(this.base, archives);
    const fingerprints = await this.fingerprints(archives);
    await Promise.all(state.network.nodes.map(async (node) => {
      const nl = layout.node(node.name);
      if (existsSync(nl.containerdRoot)) return;
      await seedContainerdRoot(template, nl.containerdRoot);
      await recordImported(nl, fingerprints);
    }));
  }

  private async fingerprints(archives: string[]): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const a of archives) {
      const st = await stat(a);
      out[a] = `${st.size}:${st.mtimeMs}`;
    }
    return out;
  }

  /** Imports what a node lacks (a built-in image that changed while it was stopped). */
  private async importImages(layout: ClusterLayout, node: string, current: Record<string, string>): Promise<void> {
    const nl = layout.node(node);
    const imported = await importedImages(nl);
    const missing = Object.keys(current).filter((a) => imported[a] !== current[a]);
    if (missing.length === 0) return;
    await waitFor(`containerd of ${node}`, async () => existsSync(nl.containerdSocket), 30_000, 20);
    for (const archive of missing) {
      await this.ctrImport(nl.containerdSocket, archive);
      await recordImported(nl, { [archive]: current[archive] });
    }
  }

  private async ctrImport(socket: string, archive: string): Promise<void> {
    await run("ctr", ["--address", socket, "--namespace", "k8s.io", "images", "import", "--snapshotter", "overlayfs", archive], { timeoutMs: 120_000 });
  }

  /**
   * For every cluster (no id): into the host registry, from which every node pulls what it
   * lacks; no cluster is touched. Into one cluster: imported into each of its nodes, so it
   * is there even for imagePullPolicy: Never.
   */
  async loadImage(archivePath: string, clusterId?: string): Promise<{ images: string[] }> {
    if (!existsSync(archivePath)) throw new TempkubeError("invalid-input", `image archive ${archivePath} does not exist`);
    if (!clusterId) {
      await this.registry.ensureRunning();
      return { images: await this.registry.push(archivePath) };
    }
    const state = await this.readState(clusterId);
    if (state.phase !== "running") throw new TempkubeError("conflict", `cluster ${clusterId} is ${state.phase}; start it to load an image into it`);
    const images = await archiveImages(archivePath).then((list) => list.map((i) => i.reference), () => [] as string[]);
    const layout = this.layout(clusterId);
    for (const node of state.network.nodes) await this.ctrImport(layout.node(node.name).containerdSocket, archivePath);
    return { images };
  }

  // ---------------------------------------------------------------- lifecycle

  async start(clusterId: string, onStep?: (step: string) => void): Promise<{ timings: StepTimings }> {
    const state = await this.readState(clusterId);
    const layout = this.layout(clusterId);
    const release = this.release(state.kubernetesVersion);
    if (state.phase !== "running") await refuseUnlessRoomFor(state.network.nodes.length);
    const steps = new StepTimer("network", onStep);
    try {
      await setupNetwork(clusterId, state.network);
      await this.setupCgroups(state.spec);
      await ensureAuthorizationAssets(layout);
      await failOnCrashLoop(this.supervisor(layout), () => this.bringUp(state, layout, release, false, steps));
    } catch (err) {
      state.phase = "failed";
      await this.writeState(state);
      throw await this.describeFailure(layout, steps.step, err);
    }
    const timings = steps.finish();
    state.phase = "running";
    await this.writeState(state);
    return { timings };
  }

  /** Ends every process of the cluster (pods included) and releases its mounts; disk state stays. */
  async stop(clusterId: string): Promise<void> {
    const state = await this.readState(clusterId);
    const layout = this.layout(clusterId);
    await this.stopProcesses(layout);
    state.phase = "stopped";
    await this.writeState(state);
  }

  /** `idInUse`: a live cluster of another data dir has this id, so the cgroup named by it is that one's. */
  private async stopProcesses(layout: ClusterLayout, idInUse = false): Promise<void> {
    // Everything on disk is crash-safe (SQLite, containerd's bolt stores), so a short
    // grace period suffices; the apiserver alone would otherwise linger on open watches.
    await this.supervisor(layout).stopAll(STOP_GRACE_MS);
    if (!idInUse) await killAll(clusterCgroup(layout.clusterId));
    await unmountAll(layout.root);
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
    await this.stopProcesses(layout, idInUse);
    const index = await this.reservedIndex(clusterId);
    if (state && index !== undefined && state.network.index !== index) {
      logger.warn({ clusterId, stateIndex: state.network.index, reserved: index }, "the cluster's state and its reservation disagree; the reservation wins");
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
    return { clusterId, phase: state.phase, components };
  }

  /** The pid of a running component's process (not its supervisor), if it runs. */
  async componentPid(clusterId: string, component: string): Promise<number | undefined> {
    const sup = this.supervisor(this.layout(clusterId));
    if (!(await sup.isRunning(component))) return undefined;
    const pid = await sup.pid(component, "child");
    return pid && existsSync(`/proc/${pid}`) ? pid : undefined;
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

  // ---------------------------------------------------------------- introspection

  /** Everything of the cluster still on the host; empty after destroy. */
  async leftovers(clusterId: string, network?: ClusterNetwork): Promise<string[]> {
    const layout = this.layout(clusterId);
    const left: string[] = [];
    const pids = await pidsIn(clusterCgroup(clusterId));
    if (pids.length) left.push(`processes ${pids.join(", ")}`);
    for (const m of await mountsUnder(layout.root)) left.push(`mount ${m}`);
    left.push(...(await leftoverNetwork(clusterId, network)));
    const { stdout: allNetns } = await run("ip", ["netns", "list"]);
    for (const line of allNetns.split("\n")) {
      const name = line.split(" ")[0];
      if (name.startsWith(`tk-${clusterId}-`) && !left.includes(`network namespace ${name}`)) left.push(`network namespace ${name}`);
    }
    for (const c of await leftoverCgroups(clusterCgroup(clusterId))) left.push(`cgroup ${c}`);
    if (existsSync(layout.root)) left.push(`directory ${layout.root}`);
    return left;
  }

  /** Resident memory of all the cluster's processes (its cgroup), and per component. */
  async memory(clusterId: string): Promise<{ totalRssBytes: number; cgroupUsageBytes: number }> {
    const usage = await memoryUsage(clusterCgroup(clusterId));
    let total = 0;
    for (const pid of await pidsIn(clusterCgroup(clusterId))) {
      const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
      total += Number(status.match(/^VmRSS:\s+(\d+) kB/m)?.[1] ?? 0) * 1024;
    }
    return { totalRssBytes: total, cgroupUsageBytes: usage?.usageBytes ?? 0 };
  }

  private async describeFailure(layout: ClusterLayout, step: string, err: unknown): Promise<TempkubeError> {
    const sup = this.supervisor(layout);
    const pattern = STEP_COMPONENTS[step];
    const lines: string[] = [];
    if (err instanceof CrashLoopError) {
      // The component that failed is known: its own last words, whatever step it broke.
      lines.push(`--- ${err.component} (last lines):`, ...err.lastLines);
    } else if (pattern) {
      for (const name of (await sup.names().catch(() => [] as string[])).filter((n) => pattern.test(n))) {
        const tail = await sup.lastLines(name, 8);
        lines.push(tail.length ? `--- ${name} (last lines):` : `--- ${name} (no output yet)`, ...tail);
      }
    }
    const cause = err instanceof Error ? err.message : String(err);
    return new TempkubeError("runtime", `cluster ${layout.clusterId}: step "${step}" failed: ${cause}${lines.length ? `\n${lines.join("\n")}` : ""}`, { cause: err });
  }
}
