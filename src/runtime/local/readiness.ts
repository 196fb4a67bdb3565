import type { SizeLimits } from "../../core/cluster-spec.js";
import { run } from "../../util/exec.js";
import { logger } from "../../util/log.js";
import { memoryQuantity } from "./addon-manifests.js";
import { fromCache, type KubeApi } from "./kube-api.js";
import { DNS_SERVICE_IP, KUBERNETES_SERVICE_IP, type NodeNetwork } from "./network.js";
import { currentServiceEndpoints, serviceRulesMatch } from "./service-endpoints.js";
import { waitFor } from "./wait.js";

/**
 * What the boot waits for, as free functions: each either reads the cluster's API or a
 * node's namespace and answers yes or no (the pure rules behind each answer are exported
 * for tests), or waits a bounded, non-fatal while.
 */

const NOT_READY_TAINT = "node.kubernetes.io/not-ready";
const PODS_SETTLE_MS = 60_000;

export type Condition = { type: string; status: string; lastHeartbeatTime?: string; lastTransitionTime?: string };
type ConditionList = { items?: { status?: { conditions?: Condition[] } }[] };
type Resources = Record<string, string>;
export type NodeItem = {
  metadata?: { name?: string };
  spec?: { taints?: { key: string }[] };
  status?: { conditions?: Condition[]; capacity?: Resources; allocatable?: Resources };
};
type NodeList = { items?: NodeItem[] };
export type PodItem = { status?: { phase?: string; conditions?: Condition[] } };

/** The condition is True and was reported at or after `since`. */
export function isFresh(
  obj: { status?: { conditions?: Condition[] } },
  type: string,
  since: number,
  stamp: "lastHeartbeatTime" | "lastTransitionTime",
): boolean {
  const c = obj.status?.conditions?.find((x) => x.type === type);
  return c?.status === "True" && Date.parse(c[stamp] ?? "") >= since;
}

/**
 * Whether `expected` nodes are Ready since `since` and advertise the size preset, and which
 * of the otherwise ready ones still advertise other figures (to be written).
 */
export function nodeReadiness(
  items: NodeItem[],
  expected: number,
  since: number,
  size: SizeLimits,
): { ready: boolean; lackingPreset: string[] } {
  const preset = { cpu: String(size.cpus), memory: memoryQuantity(size.memoryBytes) };
  const advertised = (r: Resources | undefined) => r?.cpu === preset.cpu && r?.memory === preset.memory;
  let ready = items.length >= expected;
  const lackingPreset: string[] = [];
  for (const n of items) {
    // The node lifecycle controller lifts not-ready once it has seen Ready: until then no pod lands.
    if (!isFresh(n, "Ready", since, "lastHeartbeatTime") || n.spec?.taints?.some((t) => t.key === NOT_READY_TAINT))
      ready = false;
    else if (!advertised(n.status?.capacity) || !advertised(n.status?.allocatable)) {
      ready = false;
      lackingPreset.push(`${n.metadata?.name}`);
    }
  }
  return { ready, lackingPreset };
}

/**
 * The capacity policy takes effect up to a second after it is written (the apiserver
 * recompiles policies at most once a second), so a kubelet that registers sooner reports
 * the host's figures, and would repeat them only at its next full report (a minute).
 * Such a node gets the preset's figures written here; the policy keeps them from then on.
 */
export async function nodesReady(api: KubeApi, expected: number, since: number, size: SizeLimits): Promise<boolean> {
  const res = await api.get<NodeList>(fromCache("/api/v1/nodes")).catch(() => undefined);
  const items = res?.status === 200 ? (res.body?.items ?? []) : [];
  const { ready, lackingPreset } = nodeReadiness(items, expected, since, size);
  const preset = { cpu: String(size.cpus), memory: memoryQuantity(size.memoryBytes) };
  for (const name of lackingPreset) {
    await api
      .patch(`/api/v1/nodes/${name}/status`, { status: { capacity: preset, allocatable: preset } })
      .catch(() => undefined);
  }
  return ready;
}

export async function nodesRegistered(api: KubeApi, nodes: NodeNetwork[]): Promise<boolean> {
  type Node = { status?: { addresses?: unknown[] } };
  const found = await Promise.all(nodes.map((n) => api.get<Node>(`/api/v1/nodes/${n.name}`).catch(() => undefined)));
  return found.every((res) => res?.status === 200 && (res.body?.status?.addresses?.length ?? 0) > 0);
}

export async function podsReady(api: KubeApi, ns: string, selector: string, since: number): Promise<boolean> {
  const res = await api
    .get<ConditionList>(fromCache(`/api/v1/namespaces/${ns}/pods?labelSelector=${encodeURIComponent(selector)}`))
    .catch(() => undefined);
  const items = res?.status === 200 ? (res.body?.items ?? []) : [];
  return items.some((p) => isFresh(p, "Ready", since, "lastTransitionTime"));
}

/** Every pod that should run (not Succeeded or Failed) reports Ready since `since`. */
export function podsReadyAnew(pods: PodItem[], since: number): boolean {
  return pods
    .filter((p) => p.status?.phase !== "Succeeded" && p.status?.phase !== "Failed")
    .every((p) => isFresh(p, "Ready", since, "lastTransitionTime"));
}

/**
 * After a start, pods' conditions in the store still describe the time before the stop.
 * Waits (bounded, not fatal: a user's crash-looping pod must not fail the start) until
 * every pod that should run reports Ready anew.
 */
export async function podsSettled(api: KubeApi, since: number): Promise<void> {
  const settled = async () => {
    const res = await api.get<{ items?: PodItem[] }>(fromCache("/api/v1/pods")).catch(() => undefined);
    if (res?.status !== 200) return false;
    return podsReadyAnew(res.body?.items ?? [], since);
  };
  await waitFor("pods to run again", settled, PODS_SETTLE_MS, 50).catch(() =>
    logger.warn("some pods are not ready after start"),
  );
}

/** Bounded and not fatal, like podsSettled: Services lead to this boot's pods, and kube-proxy has their rules. */
export async function endpointsSettled(api: KubeApi, nodes: NodeNetwork[]): Promise<void> {
  const settled = async () => {
    const endpoints = await currentServiceEndpoints(
      api,
      nodes.map((n) => n.ip),
    );
    if (!endpoints) {
      logger.debug("EndpointSlices do not name this boot's pods yet");
      return false;
    }
    const matching = await Promise.all(nodes.map((n) => serviceRulesMatch(n.netnsPath, endpoints).catch(() => false)));
    const settled = matching.every(Boolean);
    if (!settled)
      logger.debug({ ready: [...endpoints.ready], live: [...endpoints.live], matching }, "kube-proxy's rules lag");
    return settled;
  };
  try {
    await waitFor("Service endpoints and kube-proxy's rules to name this boot's pods", settled, PODS_SETTLE_MS, 50);
  } catch {
    logger.warn("some Services do not lead to this boot's pods yet after start");
  }
}

/** kube-proxy's Service rules in a node's namespace ("" when it has written none). */
async function serviceRules(node: NodeNetwork): Promise<string> {
  return run("nsenter", [`--net=${node.netnsPath}`, "iptables", "-w", "-t", "nat", "-S", "KUBE-SERVICES"]).then(
    (r) => r.stdout,
    () => "",
  );
}

/** `iptables -S KUBE-SERVICES` lists rules of kube-proxy's (not only the empty chain). */
export function hasServiceRules(rules: string): boolean {
  return rules.includes("-A KUBE-SERVICES ");
}

/** `iptables -S KUBE-SERVICES` has a rule for the Service's IP. */
export function routesService(rules: string, serviceIp: string): boolean {
  return rules.includes(`-d ${serviceIp}/32 `);
}

/** kube-proxy's rules from the last boot are still in the node's namespace. */
export async function serviceRulesPresent(node: NodeNetwork): Promise<boolean> {
  return hasServiceRules(await serviceRules(node));
}

/** kube-proxy has a rule for the Service's IP (it writes one only when some endpoint is ready). */
export async function serviceRouted(node: NodeNetwork, serviceIp: string): Promise<boolean> {
  return routesService(await serviceRules(node), serviceIp);
}

export async function kubeProxiesSynced(nodes: NodeNetwork[]): Promise<boolean> {
  const healthy = await Promise.all(
    nodes.map((n) =>
      fetch(`http://${n.ip}:10256/livez`, { signal: AbortSignal.timeout(1000) }).then(
        (r) => r.status === 200,
        () => false,
      ),
    ),
  );
  return healthy.every(Boolean);
}

/** nslookup's output has an answer with `ip`. */
export function answersWith(nslookupOutput: string, ip: string): boolean {
  // The answer's address line: "Server: 10.96.0.10" alone (no answer) contains 10.96.0.1 too.
  return nslookupOutput.split("\n").some((line) => /^Address:\s+(\S+)$/.exec(line.trim())?.[1] === ip);
}

/** A real lookup through the Service IP: CoreDNS serves and kube-proxy's rules are in place. */
export async function dnsAnswers(netnsPath: string): Promise<boolean> {
  try {
    const { stdout } = await run("nsenter", [
      `--net=${netnsPath}`,
      "timeout",
      "2",
      "busybox",
      "nslookup",
      "kubernetes.default.svc.cluster.local",
      DNS_SERVICE_IP,
    ]);
    return answersWith(stdout, KUBERNETES_SERVICE_IP);
  } catch {
    return false;
  }
}
