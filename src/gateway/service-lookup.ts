import { readFile } from "node:fs/promises";
import { request } from "node:https";
import YAML from "yaml";
import { splitHostPort } from "./gateway-context.js";
import type { ClusterRoute } from "./gateway-files.js";

export type ServiceTarget =
  | { kind: "port"; port: number }
  /** Not served: no such Service, or not of type LoadBalancer (ClusterIP Services are never exposed). */
  | { kind: "not-served"; why: string };

const LOOKUP_TIMEOUT_MS = 3_000;
/** Lookups are cached this long: a page's burst of requests costs one apiserver GET, and a changed Service counts within seconds. */
export const LOOKUP_CACHE_MS = 3_000;

interface KubeconfigCredentials {
  ca: string;
  cert: string;
  key: string;
}

/**
 * Finds the port a LoadBalancer Service answers on, asking the cluster's apiserver with the
 * admin kubeconfig the runtime names in the route. kube-proxy answers a LoadBalancer Service
 * on its port at the node address (the local runtime's "LoadBalancer on the node address").
 */
export class ServiceLookup {
  private readonly cache = new Map<string, { at: number; result: Promise<ServiceTarget> }>();

  constructor(private readonly now: () => number = Date.now) {}

  lookup(route: ClusterRoute, namespace: string, name: string): Promise<ServiceTarget> {
    const key = `${route.clusterId}/${namespace}/${name}`;
    const hit = this.cache.get(key);
    if (hit && this.now() - hit.at < LOOKUP_CACHE_MS) return hit.result;
    const result = fetchService(route, namespace, name);
    this.cache.set(key, { at: this.now(), result });
    // A failure (apiserver unreachable) is not remembered: the next request asks again.
    result.catch(() => this.cache.get(key)?.result === result && this.cache.delete(key));
    if (this.cache.size > 1000)
      for (const [k, v] of this.cache) if (this.now() - v.at >= LOOKUP_CACHE_MS) this.cache.delete(k);
    return result;
  }
}

async function credentials(kubeconfigPath: string): Promise<KubeconfigCredentials> {
  const doc = YAML.parse(await readFile(kubeconfigPath, "utf8")) as {
    "current-context"?: string;
    contexts?: { name: string; context: { cluster: string; user: string } }[];
    clusters?: { name: string; cluster: { "certificate-authority-data"?: string } }[];
    users?: { name: string; user: { "client-certificate-data"?: string; "client-key-data"?: string } }[];
  };
  const context = doc.contexts?.find((c) => c.name === doc["current-context"])?.context ?? doc.contexts?.[0]?.context;
  const cluster = doc.clusters?.find((c) => c.name === context?.cluster)?.cluster ?? doc.clusters?.[0]?.cluster;
  const user = doc.users?.find((u) => u.name === context?.user)?.user ?? doc.users?.[0]?.user;
  const b64 = (field: string, v: string | undefined) => {
    if (!v) throw new Error(`kubeconfig ${kubeconfigPath} has no ${field}`);
    return Buffer.from(v, "base64").toString("utf8");
  };
  return {
    ca: b64("certificate-authority-data", cluster?.["certificate-authority-data"]),
    cert: b64("client-certificate-data", user?.["client-certificate-data"]),
    key: b64("client-key-data", user?.["client-key-data"]),
  };
}

interface ServiceObject {
  spec?: { type?: string; ports?: { name?: string; port: number; protocol?: string }[] };
}

async function fetchService(route: ClusterRoute, namespace: string, name: string): Promise<ServiceTarget> {
  const creds = await credentials(route.adminKubeconfig);
  const { host, port } = splitHostPort(route.apiserver);
  const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/services/${encodeURIComponent(name)}`;
  const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(
      { host, port, path, method: "GET", ca: creds.ca, cert: creds.cert, key: creds.key, timeout: LOOKUP_TIMEOUT_MS },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (text += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`the apiserver at ${route.apiserver} did not answer within 3 s`)));
    req.on("error", reject);
    req.end();
  });
  if (status === 404) return { kind: "not-served", why: `no Service ${namespace}/${name}` };
  if (status !== 200)
    throw new Error(`the apiserver answered ${status} for Service ${namespace}/${name}: ${body.slice(0, 200)}`);
  return servedPort(JSON.parse(body) as ServiceObject, `${namespace}/${name}`);
}

/** The port to proxy to: the one named "http", else 80, else the first TCP port. Only LoadBalancer Services. */
export function servedPort(svc: ServiceObject, what: string): ServiceTarget {
  if (svc.spec?.type !== "LoadBalancer")
    return { kind: "not-served", why: `Service ${what} is of type ${svc.spec?.type ?? "ClusterIP"}, not LoadBalancer` };
  const tcp = (svc.spec.ports ?? []).filter((p) => (p.protocol ?? "TCP") === "TCP");
  const port = tcp.find((p) => p.name === "http") ?? tcp.find((p) => p.port === 80) ?? tcp[0];
  return port ? { kind: "port", port: port.port } : { kind: "not-served", why: `Service ${what} has no TCP port` };
}
