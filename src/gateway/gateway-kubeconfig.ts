import { isIPv6 } from "node:net";
import YAML from "yaml";
import { clusterHostname } from "./gateway-files.js";

/** How other machines reach the clusters: the gateway's public address and port, and the domain of the clusters' names. */
export interface GatewayAccess {
  publicAddress: string;
  port: number;
  clusterDomain: string;
}

/** The URL of every cluster's apiserver through the gateway (an IPv6 address goes in brackets, RFC 3986). */
export function gatewayServer(access: Pick<GatewayAccess, "publicAddress" | "port">): string {
  const host = isIPv6(access.publicAddress) ? `[${access.publicAddress}]` : access.publicAddress;
  return `https://${host}:${access.port}`;
}

/**
 * A cluster's kubeconfig as another machine uses it: the server is the gateway, and
 * tls-server-name carries the cluster's name, which the client sends as SNI (the gateway
 * routes by it) and verifies the apiserver's certificate against, so no DNS is needed.
 * Everything else (CA, client certificate, names) is kept as it was.
 */
export function gatewayKubeconfig(kubeconfig: string, clusterId: string, access: GatewayAccess): string {
  const doc = YAML.parseDocument(kubeconfig);
  if (doc.errors.length) throw new Error(`the kubeconfig of cluster ${clusterId} is no YAML: ${doc.errors[0].message}`);
  const clusters = doc.get("clusters");
  if (!YAML.isSeq(clusters) || clusters.items.length === 0)
    throw new Error(`the kubeconfig of cluster ${clusterId} has no clusters`);
  for (const entry of clusters.items) {
    if (!YAML.isMap(entry) || !YAML.isMap(entry.get("cluster")))
      throw new Error(`the kubeconfig of cluster ${clusterId} has a clusters entry without a cluster`);
    entry.setIn(["cluster", "server"], gatewayServer(access));
    entry.setIn(["cluster", "tls-server-name"], clusterHostname(clusterId, access.clusterDomain));
  }
  return doc.toString();
}
