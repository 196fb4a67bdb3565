import { run } from "../../util/exec.js";
import type { KubeApi } from "./kube-api.js";

type Condition = { type: string; status: string };
type PodList = { items?: { status?: { phase?: string; podIPs?: { ip: string }[]; conditions?: Condition[] } }[] };
type SliceList = { items?: { endpoints?: { addresses?: string[]; conditions?: { ready?: boolean } }[] }[] };

/**
 * After a start, pods come back with new addresses, and the EndpointSlices in the store
 * still name the old ones until kube-controller-manager catches up, and kube-proxy after it;
 * a Service is only usable once both have.
 *
 * Returns the addresses Services lead to when every endpoint address is that of a pod
 * running now (or of a node: host-network pods, the apiserver) with the pod's readiness;
 * undefined while some are not.
 */
export async function currentServiceEndpoints(api: KubeApi, nodeIps: string[]): Promise<{ ready: Set<string>; live: Set<string> } | undefined> {
  const [pods, slices] = await Promise.all([
    api.get<PodList>("/api/v1/pods").catch(() => undefined),
    api.get<SliceList>("/apis/discovery.k8s.io/v1/endpointslices").catch(() => undefined),
  ]);
  if (pods?.status !== 200 || slices?.status !== 200) return undefined;
  const readiness = new Map<string, boolean>();
  for (const p of pods.body?.items ?? []) {
    if (p.status?.phase !== "Running" && p.status?.phase !== "Pending") continue;
    const ready = p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
    for (const { ip } of p.status?.podIPs ?? []) if (!nodeIps.includes(ip)) readiness.set(ip, ready);
  }
  const ready = new Set<string>();
  for (const slice of slices.body?.items ?? []) {
    for (const e of slice.endpoints ?? []) {
      const isReady = e.conditions?.ready ?? true;
      for (const address of e.addresses ?? []) {
        if (!nodeIps.includes(address) && readiness.get(address) !== isReady) return undefined;
        if (isReady) ready.add(address);
      }
    }
  }
  return { ready, live: new Set([...readiness.keys(), ...nodeIps]) };
}

/** kube-proxy's rules in a node's namespace lead to every ready endpoint, and to nothing gone. */
export async function serviceRulesMatch(netnsPath: string, endpoints: { ready: Set<string>; live: Set<string> }): Promise<boolean> {
  const { stdout } = await run("nsenter", [`--net=${netnsPath}`, "iptables-save", "-t", "nat"]);
  const targets = new Set([...stdout.matchAll(/--to-destination (\d+\.\d+\.\d+\.\d+):\d+/g)].map((m) => m[1]));
  return [...endpoints.ready].every((a) => targets.has(a)) && [...targets].every((t) => endpoints.live.has(t));
}
