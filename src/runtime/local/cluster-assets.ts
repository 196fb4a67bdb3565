import { X509Certificate } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { clusterHostname } from "../../gateway/gateway-files.js";
import { kubeletCgroupRoot } from "./cgroups.js";
import { containerdRegistryHosts } from "./host-registry.js";
import { admissionConfig, cniConfig, containerdConfig, kubeletConfig, kubeProxyConfig } from "./component-configs.js";
import { nodeContainerRuntime } from "./node-container-runtime.js";
import { renderKubeconfig } from "./kubeconfig.js";
import { nodeResolvConf } from "./upstream-dns.js";
import type { ClusterLayout, NodeLayout } from "./layout.js";
import { KUBERNETES_SERVICE_IP, type ClusterNetwork } from "./network.js";
import { CertificateAuthority, serviceAccountKeyPair, type CertificateRequest } from "./pki.js";
import { authorizationConfig, SECRETS_AUTHORIZER_ADDRESS, TENANT_GROUP } from "./tenant-guards.js";
import YAML from "yaml";

async function put(path: string, content: string, mode = 0o600): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, content, { mode });
}

export function nodeName(clusterId: string, index: number): string {
  return index === 0 ? `${clusterId}-control-plane` : `${clusterId}-worker-${index}`;
}

/** Users of the kubeconfigs tempkube writes: who they are in the cluster. */
const CLIENTS: Record<string, Omit<CertificateRequest, "usage">> = {
  admin: { commonName: "tempkube-admin", organizations: ["system:masters"] },
  tenant: { commonName: "tenant", organizations: [TENANT_GROUP] },
  "controller-manager": { commonName: "system:kube-controller-manager" },
  scheduler: { commonName: "system:kube-scheduler" },
  "kube-proxy": { commonName: "system:kube-proxy" },
};

/**
 * Writes everything a cluster needs on disk before any process starts: PKI, kubeconfigs
 * and component configuration. Generated once at provision; start reuses it.
 */
export async function writeClusterAssets(
  layout: ClusterLayout,
  clusterId: string,
  net: ClusterNetwork,
  privileged: boolean,
  clusterDomain: string,
): Promise<void> {
  const controlPlane = net.nodes[0];
  const server = `https://${controlPlane.ip}:6443`;
  const ca = await CertificateAuthority.create(`tempkube-${clusterId}-ca`);
  await put(layout.pki("ca.crt"), ca.certPem, 0o644);
  await put(layout.pki("ca.key"), ca.keyPem);

  const sa = await serviceAccountKeyPair();
  await put(layout.pki("sa.pub"), sa.publicPem);
  await put(layout.pki("sa.key"), sa.privatePem);

  const issueTo = async (name: string, req: CertificateRequest) => {
    const pair = await ca.issue(req);
    await put(layout.pki(`${name}.crt`), pair.certPem, 0o644);
    await put(layout.pki(`${name}.key`), pair.keyPem);
    return pair;
  };

  const issued = await Promise.all([
    issueTo("apiserver", apiServerCertificateRequest(clusterId, net, clusterDomain)),
    // Serving certificates for the controllers' loopback ports: without them each generates
    // a self-signed RSA key at start-up, which costs a second of CPU.
    issueTo("controller-manager-serving", {
      commonName: "kube-controller-manager",
      usage: "server",
      ipAddresses: ["127.0.0.1"],
      dnsNames: ["localhost"],
    }),
    issueTo("scheduler-serving", {
      commonName: "kube-scheduler",
      usage: "server",
      ipAddresses: ["127.0.0.1"],
      dnsNames: ["localhost"],
    }),
    issueTo("apiserver-kubelet-client", {
      commonName: "kube-apiserver-kubelet-client",
      organizations: ["system:masters"],
      usage: "client",
    }),
    ...Object.entries(CLIENTS).map(([name, req]) =>
      issueTo(name, { ...req, usage: "client" }).then((pair) => ({ name, pair })),
    ),
  ]);
  for (const entry of issued) {
    if (!("name" in entry)) continue;
    const { name, pair } = entry;
    await put(
      layout.kubeconfig(name),
      renderKubeconfig({
        clusterName: `tempkube-${clusterId}`,
        contextName: name === "tenant" ? `tempkube-${clusterId}` : `tempkube-${clusterId}-${name}`,
        userName: `tempkube-${clusterId}-${name}`,
        server,
        caPem: ca.certPem,
        certPem: pair.certPem,
        keyPem: pair.keyPem,
      }),
    );
  }

  await put(layout.config("admission.yaml"), admissionConfig(privileged), 0o644);
  await writeAuthorizationAssets(layout, ca);
  await writeFrontProxyAssets(layout);

  for (const [k, node] of net.nodes.entries()) {
    const nl = layout.node(node.name);
    const kubelet = await ca.issue({
      commonName: `system:node:${node.name}`,
      organizations: ["system:nodes"],
      usage: "both",
      dnsNames: [node.name],
      ipAddresses: [node.ip],
    });
    await put(nl.kubeletCert, kubelet.certPem, 0o644);
    await put(nl.kubeletKey, kubelet.keyPem);
    await put(
      nl.kubeletKubeconfig,
      renderKubeconfig({
        clusterName: `tempkube-${clusterId}`,
        contextName: "kubelet",
        userName: `system:node:${node.name}`,
        server,
        caPem: ca.certPem,
        certPem: kubelet.certPem,
        keyPem: kubelet.keyPem,
      }),
    );
    await writeContainerdConfig(nl);
    await put(
      join(nl.registryHostsDir, "_default", "hosts.toml"),
      containerdRegistryHosts(net.egress ?? "none"),
      0o644,
    );
    await put(nl.cniConfList, cniConfig(node, nl.cniIpamDir), 0o644);
    await put(
      nl.kubeletConfig,
      kubeletConfig({
        node: nl,
        net: node,
        cgroupRoot: kubeletCgroupRoot(clusterId, k),
        kubeconfig: nl.kubeletKubeconfig,
        caFile: layout.pki("ca.crt"),
        certFile: nl.kubeletCert,
        keyFile: nl.kubeletKey,
      }),
      0o644,
    );
    await put(nl.kubeProxyConfig, kubeProxyConfig(net, node, layout.kubeconfig("kube-proxy")), 0o644);
    // Pods use cluster DNS; this feeds dnsPolicy: Default pods, CoreDNS among them (its upstream).
    await put(nl.resolvConf, await nodeResolvConf(net.egress ?? "none", net.gateway), 0o644);
    await mkdir(nl.podLogDir, { recursive: true });
  }
  await mkdir(layout.volumesDir, { recursive: true });
  await mkdir(layout.kineDir, { recursive: true });
}

/** The apiserver's AuthorizationConfiguration, the webhook's serving certificate, and the kubeconfig that leads to it. */
async function writeAuthorizationAssets(layout: ClusterLayout, ca: CertificateAuthority): Promise<void> {
  const serving = await ca.issue({
    commonName: "tempkube-secrets-authorizer",
    usage: "server",
    ipAddresses: ["127.0.0.1"],
  });
  await put(layout.pki("secrets-authorizer.crt"), serving.certPem, 0o644);
  await put(layout.pki("secrets-authorizer.key"), serving.keyPem);
  // Nothing authenticates the apiserver to the webhook: it only ever denies, so a caller gains nothing.
  await put(
    layout.config("secrets-authorizer.kubeconfig"),
    YAML.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [
        {
          name: "secrets-authorizer",
          cluster: {
            server: `https://${SECRETS_AUTHORIZER_ADDRESS}/authorize`,
            "certificate-authority-data": Buffer.from(ca.certPem).toString("base64"),
          },
        },
      ],
      users: [{ name: "kube-apiserver", user: {} }],
      contexts: [{ name: "secrets-authorizer", context: { cluster: "secrets-authorizer", user: "kube-apiserver" } }],
      "current-context": "secrets-authorizer",
    }),
  );
  await put(
    layout.config("authorization.yaml"),
    authorizationConfig(layout.config("secrets-authorizer.kubeconfig")),
    0o644,
  );
}

/**
 * The front-proxy files kubeadm writes (front-proxy-ca.crt/key, front-proxy-client.crt/key,
 * the client's CN `front-proxy-client`): the apiserver presents the client certificate when
 * it proxies a request to an aggregated API (--proxy-client-cert-file), and trusts the
 * X-Remote-User/-Group/-Extra- headers of a request only from a certificate of this CA with
 * that name (--requestheader-client-ca-file, --requestheader-allowed-names). The CA is its
 * own, never the cluster's: the cluster's CA signs every user's client certificate (and,
 * through kube-controller-manager's signer, approved CSRs), so were it trusted for the
 * headers, any of those certificates could assert any user, system:masters included.
 * Both keys stay on the host (0600) like ca.key; no pod mounts them.
 */
export const FRONT_PROXY_CLIENT_NAME = "front-proxy-client";

async function writeFrontProxyAssets(layout: ClusterLayout): Promise<void> {
  const caComplete = existsSync(layout.pki("front-proxy-ca.key")) && existsSync(layout.pki("front-proxy-ca.crt"));
  let ca: CertificateAuthority;
  if (caComplete) {
    ca = await CertificateAuthority.load(
      await readFile(layout.pki("front-proxy-ca.crt"), "utf8"),
      await readFile(layout.pki("front-proxy-ca.key"), "utf8"),
    );
  } else {
    ca = await CertificateAuthority.create(`tempkube-${layout.clusterId}-front-proxy-ca`);
    // Keys before certificates: a start cut short in between finds no certificate and makes the pair again.
    await put(layout.pki("front-proxy-ca.key"), ca.keyPem);
    await put(layout.pki("front-proxy-ca.crt"), ca.certPem, 0o644);
  }
  const client = await ca.issue({ commonName: FRONT_PROXY_CLIENT_NAME, usage: "client" });
  await put(layout.pki("front-proxy-client.key"), client.keyPem);
  await put(layout.pki("front-proxy-client.crt"), client.certPem, 0o644);
}

/**
 * The apiserver's serving certificate. Its name under the gateway, `<id>.<cluster domain>`,
 * is what clients verify it by: the gateway passes TLS through, and the kubeconfigs it hands
 * out carry that name as tls-server-name.
 */
function apiServerCertificateRequest(
  clusterId: string,
  net: ClusterNetwork,
  clusterDomain: string,
): CertificateRequest {
  return {
    commonName: "kube-apiserver",
    usage: "server",
    dnsNames: [
      "kubernetes",
      "kubernetes.default",
      "kubernetes.default.svc",
      "kubernetes.default.svc.cluster.local",
      "localhost",
      clusterHostname(clusterId, clusterDomain),
    ],
    ipAddresses: [net.nodes[0].ip, "127.0.0.1", KUBERNETES_SERVICE_IP],
  };
}

/**
 * Before the apiserver starts: a certificate without the cluster's name under the current
 * domain (a cluster made before the gateway, or by a server with another --cluster-domain)
 * is issued again from the cluster's own CA; the key changes with it, nothing else does.
 * Returns whether it was.
 */
export async function ensureApiServerCertificate(
  layout: ClusterLayout,
  clusterId: string,
  net: ClusterNetwork,
  clusterDomain: string,
): Promise<boolean> {
  const current = new X509Certificate(await readFile(layout.pki("apiserver.crt")));
  // checkHost matches the certificate's DNS SANs the way a TLS client does (RFC 6125).
  if (current.checkHost(clusterHostname(clusterId, clusterDomain), { wildcards: false }) !== undefined) return false;
  const ca = await loadCertificateAuthority(layout);
  const pair = await ca.issue(apiServerCertificateRequest(clusterId, net, clusterDomain));
  // The key first: were this cut short, the old certificate with a new key fails the next
  // check too (no SAN), so it is issued again rather than leaving a pair that does not match.
  await put(layout.pki("apiserver.key"), pair.keyPem);
  await put(layout.pki("apiserver.crt"), pair.certPem, 0o644);
  return true;
}

async function loadCertificateAuthority(layout: ClusterLayout): Promise<CertificateAuthority> {
  return CertificateAuthority.load(
    await readFile(layout.pki("ca.crt"), "utf8"),
    await readFile(layout.pki("ca.key"), "utf8"),
  );
}

/**
 * A cluster made before API aggregation was set up gets its front-proxy files at its next
 * start (its apiserver's flags name them). Returns whether they were written.
 */
export async function ensureFrontProxyAssets(layout: ClusterLayout): Promise<boolean> {
  const files = ["front-proxy-ca.crt", "front-proxy-ca.key", "front-proxy-client.crt", "front-proxy-client.key"];
  if (files.every((f) => existsSync(layout.pki(f)))) return false;
  await writeFrontProxyAssets(layout);
  return true;
}

/** A cluster made before the authorization webhook existed gets its files at its next start. */
export async function ensureAuthorizationAssets(layout: ClusterLayout): Promise<void> {
  if (existsSync(layout.config("authorization.yaml")) && existsSync(layout.pki("secrets-authorizer.key"))) return;
  await writeAuthorizationAssets(layout, await loadCertificateAuthority(layout));
}

/**
 * A node's containerd configuration names the built runc and the node's own paths. It is
 * written at provision and again at every start, so a cluster made under an older
 * containerd (Debian's 1.6, configuration version 2, runc from PATH) starts on the one
 * tempkube builds now.
 */
export async function writeContainerdConfig(nl: NodeLayout): Promise<void> {
  await put(nl.containerdConfig, containerdConfig(nl, nodeContainerRuntime().runc), 0o644);
}
