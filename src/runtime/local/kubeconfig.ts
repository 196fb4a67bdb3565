import YAML from "yaml";

export interface KubeconfigInput {
  /** Cluster and context names carry the cluster id, as users expect to find it there. */
  clusterName: string;
  contextName: string;
  userName: string;
  server: string;
  caPem: string;
  certPem: string;
  keyPem: string;
}

const b64 = (s: string) => Buffer.from(s).toString("base64");

export function renderKubeconfig(k: KubeconfigInput): string {
  return YAML.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: k.clusterName, cluster: { server: k.server, "certificate-authority-data": b64(k.caPem) } }],
    users: [
      { name: k.userName, user: { "client-certificate-data": b64(k.certPem), "client-key-data": b64(k.keyPem) } },
    ],
    contexts: [{ name: k.contextName, context: { cluster: k.clusterName, user: k.userName } }],
    "current-context": k.contextName,
    preferences: {},
  });
}
