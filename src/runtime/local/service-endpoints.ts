import { run } from "../../util/exec.js";
import { fromCache, type KubeApi } from "./kube-api.js";

type Meta = { namespace?: string; name?: string; labels?: Record<string, string>; deletionTimestamp?: string };
type Condition = { type: string; status: string };
export type Pod = { metadata?: Meta; status?: { phase?: string; podIPs?: { ip: string }[]; conditions?: Condition[] } };
export type Service = {
  metadata?: Meta;
  spec?: { selector?: Record<string, string>; publishNotReadyAddresses?: boolean };
};
export type EndpointSlice = {
  metadata?: Meta;
  endpoints?: { addresses?: string[]; conditions?: { ready?: boolean; terminating?: boolean } }[];
};

/** Where Services lead: the addresses kube-proxy must send to, and every address it may still name. */
export interface ServiceEndpoints {
  ready: Set<string>;
  live: Set<string>;
}

const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

/**
 * After a start, pods come back with new addresses, and the EndpointSlices in the store
 * still name the old ones until kube-controller-manager catches up, and kube-proxy after it;
 * a Service is only usable once both have.
 *
 * For every Service with a selector, its slices must name exactly the pods it selects that
 * have an address, each with the pod's readiness (what the EndpointSlice controller writes);
 * undefined while some do not. Slices of Services without a selector are someone else's to
 * keep and are taken as they are.
 */
export function settledServiceEndpoints(
  services: Service[],
  pods: Pod[],
  slices: EndpointSlice[],
  nodeIps: string[],
): ServiceEndpoints | undefined {
  const key = (m: Meta | undefined, name = m?.name) => `${m?.namespace}/${name}`;
  const named = new Map<string, Map<string, boolean>>();
  for (const slice of slices) {
    const service = slice.metadata?.labels?.[SERVICE_NAME_LABEL];
    if (!service) continue;
    const addresses = named.get(key(slice.metadata, service)) ?? new Map<string, boolean>();
    named.set(key(slice.metadata, service), addresses);
    for (const e of slice.endpoints ?? []) {
      if (e.conditions?.terminating) continue;
      for (const a of e.addresses ?? []) addresses.set(a, e.conditions?.ready ?? true);
    }
  }
  const running = pods.filter(
    (p) => !p.metadata?.deletionTimestamp && (p.status?.phase === "Running" || p.status?.phase === "Pending"),
  );
  const ready = new Set<string>();
  const live = new Set<string>([...nodeIps, ...running.flatMap((p) => (p.status?.podIPs ?? []).map((i) => i.ip))]);
  for (const service of services) {
    const selector = Object.entries(service.spec?.selector ?? {});
    const actual = named.get(key(service.metadata)) ?? new Map<string, boolean>();
    if (selector.length === 0) {
      for (const [a, isReady] of actual) {
        live.add(a);
        if (isReady) ready.add(a);
      }
      continue;
    }
    const expected = new Map<string, boolean>();
    for (const p of running) {
      if (
        p.metadata?.namespace !== service.metadata?.namespace ||
        !selector.every(([k, v]) => p.metadata?.labels?.[k] === v)
      )
        continue;
      const isReady =
        service.spec?.publishNotReadyAddresses ||
        (p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false);
      for (const { ip } of p.status?.podIPs ?? []) expected.set(ip, isReady);
    }
    if (expected.size !== actual.size || [...expected].some(([a, isReady]) => actual.get(a) !== isReady))
      return undefined;
    for (const [a, isReady] of expected) if (isReady) ready.add(a);
  }
  return { ready, live };
}

type List<T> = { items?: T[] };

/**
 * The same, read from the watch caches. Called once every pod was seen Ready anew through
 * the same cache, which only moves forward, so the pods read here are of this boot; a slice
 * older than they are does not match them and the caller looks again.
 */
export async function currentServiceEndpoints(api: KubeApi, nodeIps: string[]): Promise<ServiceEndpoints | undefined> {
  const [services, pods, slices] = await Promise.all([
    api.get<List<Service>>(fromCache("/api/v1/services")).catch(() => undefined),
    api.get<List<Pod>>(fromCache("/api/v1/pods")).catch(() => undefined),
    api.get<List<EndpointSlice>>(fromCache("/apis/discovery.k8s.io/v1/endpointslices")).catch(() => undefined),
  ]);
  if (services?.status !== 200 || pods?.status !== 200 || slices?.status !== 200) return undefined;
  return settledServiceEndpoints(services.body?.items ?? [], pods.body?.items ?? [], slices.body?.items ?? [], nodeIps);
}

/** kube-proxy's rules in a node's namespace lead to every ready endpoint, and to nothing gone. */
export async function serviceRulesMatch(netnsPath: string, endpoints: ServiceEndpoints): Promise<boolean> {
  const { stdout } = await run("nsenter", [`--net=${netnsPath}`, "iptables-save", "-t", "nat"]);
  const targets = new Set([...stdout.matchAll(/--to-destination (\d+\.\d+\.\d+\.\d+):\d+/g)].map((m) => m[1]));
  return [...endpoints.ready].every((a) => targets.has(a)) && [...targets].every((t) => endpoints.live.has(t));
}
