import { existsSync } from "node:fs";
import { mkdir, readFile, rm } from "node:fs/promises";
import { SIZE_PRESETS } from "../../core/cluster-spec.js";
import { DEFAULT_CLUSTER_DOMAIN } from "../../gateway/gateway-files.js";
import type { KubernetesRelease } from "../../setup/catalogue.js";
import { logger } from "../../util/log.js";
import {
  applyAddons,
  applyCapacityPolicy,
  applyTenantGuards,
  liftStartingTaint,
  publishRootCa,
  writeCoreDnsConfig,
} from "./cluster-objects.js";
import type { LocalClusterState } from "./cluster-state.js";
import {
  apiServerCommands,
  containerdCommand,
  controllerCommands,
  kubeletCommand,
  kubeProxyCommand,
  type ClusterCommandsInput,
} from "./component-commands.js";
import { CONTROL_PLANE } from "./components.js";
import { READYZ_BEFORE_BOOTSTRAP_HOOKS } from "./datastore-template.js";
import type { HostRegistry } from "./host-registry.js";
import { KubeApi } from "./kube-api.js";
import type { ClusterLayout } from "./layout.js";
import { DNS_SERVICE_IP, KUBERNETES_SERVICE_IP, type NodeNetwork } from "./network.js";
import { builtInImageArchives, fingerprints, importMissingImages } from "./node-images.js";
import {
  dnsAnswers,
  endpointsSettled,
  kubeProxiesSynced,
  nodesReady,
  nodesRegistered,
  podsReady,
  podsSettled,
  serviceRouted,
  serviceRulesPresent,
} from "./readiness.js";
import type { StepTimer } from "./step-timer.js";
import type { Supervisor } from "./supervisor.js";
import { waitFor } from "./wait.js";

/**
 * A cluster's boot, the way kind's create runs a list of actions over one context: what
 * every step needs, made once when the boot begins.
 */
export interface BootContext {
  readonly state: LocalClusterState;
  readonly nodes: NodeNetwork[];
  readonly layout: ClusterLayout;
  readonly release: KubernetesRelease;
  readonly commands: ClusterCommandsInput;
  readonly sup: Supervisor;
  readonly registry: HostRegistry;
  readonly steps: StepTimer;
  /** The admin's client of the cluster's apiserver. */
  readonly api: KubeApi;
  /** When the boot began, in the API's second resolution: conditions count only from here. */
  readonly since: number;
  /** What is left of the boot's one deadline. */
  readonly left: () => number;
}

export async function bootContext(options: {
  state: LocalClusterState;
  layout: ClusterLayout;
  release: KubernetesRelease;
  /** The nodes' kubelet release (the control plane's unless the host's cgroup version rules it out). */
  kubeletRelease: KubernetesRelease;
  sup: Supervisor;
  registry: HostRegistry;
  steps: StepTimer;
  readyTimeoutMs: number;
}): Promise<BootContext> {
  const { state, layout } = options;
  await mkdir(layout.runDir, { recursive: true });
  await mkdir(layout.logDir, { recursive: true });
  const [ca, cert, key] = await Promise.all([
    readFile(layout.pki("ca.crt"), "utf8"),
    readFile(layout.pki("admin.crt"), "utf8"),
    readFile(layout.pki("admin.key"), "utf8"),
  ]);
  const api = new KubeApi(`https://${state.network.nodes[0].ip}:6443`, { ca, cert, key });
  // Conditions written before a stop are still in the store: only what is reported after
  // this moment (second resolution, as the API keeps it) counts as ready.
  const since = Math.floor(Date.now() / 1000) * 1000;
  // One deadline for the whole boot, not one per step: a cluster destroyed underneath a
  // boot (by another process) would otherwise keep it waiting out every step in turn.
  const deadline = Date.now() + options.readyTimeoutMs;
  return {
    ...options,
    nodes: state.network.nodes,
    commands: {
      clusterId: state.id,
      release: options.release,
      kubeletRelease: options.kubeletRelease,
      layout,
      net: state.network,
      clusterDomain: state.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN,
    },
    api,
    since,
    left: () => Math.max(0, deadline - Date.now()),
  };
}

// ---------------------------------------------------------------- the two boots

/** A new cluster: its datastore is the template's, its nodes have never run. */
export async function firstBoot(ctx: BootContext): Promise<void> {
  await startContainerdsAndApiServer(ctx);
  await importChangedImages(ctx);
  await awaitApiServerServing(ctx);
  // CoreDNS is scheduled as soon as its node registers (it tolerates the starting taint):
  // it must find the Corefile of this cluster's egress, not the template's.
  await writeCoreDnsConfig(ctx.api, ctx.state);
  // The kubelets next: their path (start, register, Ready, CoreDNS) is the create's critical
  // path, and the controllers and the objects below are not on it. They register their nodes
  // with a NoSchedule taint that is lifted once kube-proxy's rules are written.
  ctx.steps.mark("kubelets started");
  await startKubelets(ctx);
  const { controllerManagerStarted } = await startControllers(ctx);
  const capacityPolicy = writeNodeCapacityPolicy(ctx);
  const addons = inBackground(
    Promise.all([
      capacityPolicy,
      publishRootCa(ctx.api, ctx.layout, ctx.left),
      applyAddons(ctx.api, ctx.state, ctx.layout),
    ]),
  );
  // kube-proxy needs its Node object, and when it is missing polls for it once a second
  // (pkg/proxy/node.go), so on first boot it starts once its node is registered.
  await awaitNodesRegistered(ctx);
  await startKubeProxies(ctx);
  await awaitServiceRules(ctx);
  await awaitKubernetesServiceRouted(ctx);
  // The policy is in before a tenant's pod can be scheduled (written long before, in practice).
  await capacityPolicy;
  await liftStartingTaint(ctx.api, ctx.nodes, ctx.left);
  await awaitReady(ctx, addons, controllerManagerStarted);
}

/** A stopped cluster again: its datastore holds the last boot's objects, its nodes the last boot's pods. */
export async function restart(ctx: BootContext): Promise<void> {
  await startContainerdsAndApiServer(ctx);
  await importChangedImages(ctx);
  const kubeletsStarted = await startKubeletsIfRulesKept(ctx);
  await awaitApiServerServing(ctx);
  // kube-proxy first: its rules are on the start's critical path and the other controllers
  // are not (on a 2-core host, starting the scheduler and building the guards' objects
  // first held it back ~0.45 s).
  await startKubeProxies(ctx);
  const { controllerManagerStarted } = await startControllers(ctx);
  // The capacity policy and the tenant guards on every boot, so that a cluster made before
  // either existed (or before a guard was tightened) is held by today's at its next start.
  // In the background, beside kube-proxy's start: the datastore holds the last boot's
  // policy, which the apiserver enforces from its start, and writing it again takes
  // 0.3-0.9 s (the apiserver compiles its CEL).
  const capacityPolicy = inBackground(applyCapacityPolicy(ctx.api, ctx.state, ctx.release));
  const guards = inBackground(applyTenantGuards(ctx.api, ctx.state));
  await awaitServiceRules(ctx);
  // Without the last boot's rules (the host rebooted), the kubelets (which restart pods)
  // start once kube-proxy has written them, and once today's policy is in.
  if (!kubeletsStarted) {
    await capacityPolicy;
    await startKubelets(ctx);
  }
  await awaitReady(ctx, Promise.all([capacityPolicy, guards]), controllerManagerStarted);
  await awaitPodsRunningAgain(ctx);
  await awaitServiceEndpointsUpdated(ctx);
}

// ---------------------------------------------------------------- shared steps

/** Started now, awaited later (awaitReady); this only keeps an early failure from going unhandled. */
function inBackground<T>(work: Promise<T>): Promise<T> {
  work.catch(() => undefined);
  return work;
}

/** The containerds (nodes' image stores) and the datastore with its apiserver: what everything else needs. */
async function startContainerdsAndApiServer(ctx: BootContext): Promise<void> {
  ctx.steps.mark("processes started");
  // Images loaded for every cluster come from here; the cluster runs without it otherwise.
  await ctx.registry
    .ensureRunning()
    .catch((err: unknown) => logger.warn({ err }, "the host image registry is not running"));
  for (const node of ctx.nodes) {
    // Nothing runs on the node now, so no address is really in use.
    await rm(ctx.layout.node(node.name).cniIpamDir, { recursive: true, force: true });
    await ctx.sup.start(containerdCommand(ctx.commands, node));
  }
  for (const c of apiServerCommands(ctx.commands)) await ctx.sup.start(c);
}

/** Built-in images that changed while the cluster was stopped (none on a first boot: the nodes are seeded). */
async function importChangedImages(ctx: BootContext): Promise<void> {
  ctx.steps.mark("images imported");
  const current = await fingerprints(builtInImageArchives());
  await Promise.all(ctx.nodes.map((node) => importMissingImages(ctx.layout, node.name, current)));
}

/**
 * A pod that connects to a Service before kube-proxy's rules exist keeps an un-NATed
 * conntrack entry and hangs for its whole connect timeout, so no pod may start first.
 * On a restart whose node namespaces kept the rules of the last boot, that holds from
 * the start, and the kubelets start now, beside the apiserver: a kubelet watches its
 * pods only once its Node cache has synced, which it checks once a second
 * (pkg/kubelet/config/apiserver.go), so one started before the apiserver serves is
 * running pods a second sooner than one started after. kube-proxy, on the contrary,
 * starts once the apiserver serves (startKubeProxies): refused at first, it would wait
 * out client-go's retry backoff (0.8 s, then 1.6 s). Returns whether the kubelets started.
 */
async function startKubeletsIfRulesKept(ctx: BootContext): Promise<boolean> {
  const { nodes, layout } = ctx;
  const rulesKept = (await Promise.all(nodes.map((n) => serviceRulesPresent(n)))).every(Boolean);
  if (!rulesKept) return false;
  await waitFor(
    "containerd",
    async () => nodes.every((n) => existsSync(layout.node(n.name).containerdSocket)),
    30_000,
    20,
  );
  await startKubelets(ctx);
  return true;
}

/** Everything else starts against a ready apiserver: no client backoff to wait out. */
async function awaitApiServerServing(ctx: BootContext): Promise<void> {
  ctx.steps.mark("apiserver ready");
  await waitFor("kube-apiserver /readyz", () => ctx.api.ok(READYZ_BEFORE_BOOTSTRAP_HOOKS), ctx.left(), 50);
}

/**
 * The controllers, against a serving apiserver. kube-controller-manager polls /healthz once
 * a second before it starts any controller, and /healthz waits for the bootstrap hooks: it
 * starts once that passes, so that its first poll does (in parallel with the nodes), in the
 * background, awaited by awaitReady.
 */
async function startControllers(ctx: BootContext): Promise<{ controllerManagerStarted: Promise<void> }> {
  const { api, sup, left } = ctx;
  const controllers = controllerCommands(ctx.commands);
  for (const c of controllers.filter((c) => c.name !== CONTROL_PLANE.controllerManager)) await sup.start(c);
  const controllerManagerStarted = inBackground(
    waitFor("kube-apiserver /healthz", () => api.ok("/healthz"), left(), 50).then(() =>
      sup.start(controllers.find((c) => c.name === CONTROL_PLANE.controllerManager)!),
    ),
  );
  return { controllerManagerStarted };
}

/**
 * Started beside the kubelets, not before them: the apiserver compiles the policy's CEL
 * (0.4-0.5 s of a create on a 2-core host) while a kubelet starts (~1 s to register). A
 * Node registered before the policy took effect (the apiserver picks up policies once a
 * second, admission/plugin/policy/generic/policy_source.go policyRefreshIntervalDefault)
 * advertises the host's capacity until its next status write, which the policy rewrites;
 * nodesReady writes the preset itself to a node that still lacks it, and a boot is only
 * ready once every node advertises it. Returns the write, started now.
 */
function writeNodeCapacityPolicy(ctx: BootContext): Promise<void> {
  return inBackground(applyCapacityPolicy(ctx.api, ctx.state, ctx.release));
}

async function startKubelets(ctx: BootContext): Promise<void> {
  for (const node of ctx.nodes) await ctx.sup.start(kubeletCommand(ctx.commands, node));
}

async function awaitNodesRegistered(ctx: BootContext): Promise<void> {
  ctx.steps.mark("nodes registered");
  await waitFor("the kubelets to register their nodes", () => nodesRegistered(ctx.api, ctx.nodes), ctx.left(), 50);
}

async function startKubeProxies(ctx: BootContext): Promise<void> {
  for (const node of ctx.nodes) await ctx.sup.start(kubeProxyCommand(ctx.commands, node));
}

/** Waits until kube-proxy on every node has synced its rules. */
async function awaitServiceRules(ctx: BootContext): Promise<void> {
  ctx.steps.mark("service rules written");
  await waitFor("kube-proxy to sync its rules", () => kubeProxiesSynced(ctx.nodes), ctx.left(), 50);
}

/**
 * Pods get the `kubernetes` Service's address in their environment (in-cluster clients
 * such as CoreDNS need it) only if it exists when they start, and the apiserver makes
 * it once all of /readyz passes, i.e. after the bootstrap hooks.
 */
async function awaitKubernetesServiceRouted(ctx: BootContext): Promise<void> {
  await waitFor(
    "kube-proxy's rules for the kubernetes Service",
    async () => (await Promise.all(ctx.nodes.map((n) => serviceRouted(n, KUBERNETES_SERVICE_IP)))).every(Boolean),
    ctx.left(),
    50,
  );
}

/** The end of every boot: what was started in the background, then the cluster as a user will find it. */
async function awaitReady(
  ctx: BootContext,
  addons: Promise<unknown>,
  controllerManagerStarted: Promise<void>,
): Promise<void> {
  const { api, steps, since, left, nodes } = ctx;
  steps.mark("addons applied");
  await addons;
  steps.mark("nodes ready");
  await waitFor(
    `${nodes.length} node(s) Ready with the size preset's capacity`,
    () => nodesReady(api, nodes.length, since, SIZE_PRESETS[ctx.state.spec.size]),
    left(),
  );
  steps.mark("default service account");
  await waitFor(
    "ServiceAccount default/default",
    () => api.ok("/api/v1/namespaces/default/serviceaccounts/default"),
    left(),
  );
  steps.mark("coredns available");
  await waitFor("CoreDNS available", () => podsReady(api, "kube-system", "k8s-app=kube-dns", since), left());
  steps.mark("cluster dns answers");
  // Asked only once kube-proxy leads the Service somewhere: a query sent before then is
  // lost, and the lookup would wait out its whole timeout.
  await waitFor(
    "cluster DNS to answer through the kube-dns Service",
    async () => (await serviceRouted(nodes[0], DNS_SERVICE_IP)) && (await dnsAnswers(nodes[0].netnsPath)),
    left(),
    50,
  );
  steps.mark("controller manager started");
  await controllerManagerStarted;
  steps.mark("apiserver bootstrap reconciled");
  await waitFor("kube-apiserver /readyz (all checks)", () => api.ok("/readyz"), left(), 50);
}

async function awaitPodsRunningAgain(ctx: BootContext): Promise<void> {
  ctx.steps.mark("pods running again");
  await podsSettled(ctx.api, ctx.since);
}

async function awaitServiceEndpointsUpdated(ctx: BootContext): Promise<void> {
  ctx.steps.mark("service endpoints updated");
  await endpointsSettled(ctx.api, ctx.nodes);
}
