import { clusterHostname } from "../../gateway/gateway-files.js";
import type { KubernetesRelease } from "../../setup/catalogue.js";
import { addonBinary, kubernetesBinary, localToolBinary } from "../../setup/artifact-paths.js";
import { mutatingPolicyApiVersion, mutatingPolicyIsGA } from "./addon-manifests.js";
import { systemCgroup } from "./cgroups.js";
import { nodeContainerRuntime } from "./node-container-runtime.js";
import { CONTROL_PLANE, NODE_COMPONENTS, nodeComponentName } from "./components.js";
import { CONTROL_PLANE_NODE_LABEL } from "./component-configs.js";
import { SECRETS_AUTHORIZER_ADDRESS } from "./tenant-guards.js";
import { FRONT_PROXY_CLIENT_NAME } from "./cluster-assets.js";
import type { ClusterLayout } from "./layout.js";
import { SERVICE_CIDR, type ClusterNetwork, type NodeNetwork } from "./network.js";
import type { ComponentCommand } from "./supervisor.js";

/** The command lines of a cluster's processes. Names are unique per cluster (pid and log files). */
export interface ClusterCommandsInput {
  clusterId: string;
  /** The control plane's release (kube-proxy's too). */
  release: KubernetesRelease;
  /** The nodes' kubelet release: the control plane's, or an older one on a cgroup v1 host (core/kubelet-policy.ts). */
  kubeletRelease: KubernetesRelease;
  layout: ClusterLayout;
  net: ClusterNetwork;
  /** Clusters are named `<id>.<clusterDomain>` under the gateway. */
  clusterDomain: string;
}

/** kine and kube-apiserver: started first, everything else needs them. */
export function apiServerCommands(input: ClusterCommandsInput): ComponentCommand[] {
  return controlPlaneCommands(input).filter((c) => c.name === CONTROL_PLANE.kine || c.name === CONTROL_PLANE.apiServer);
}

/**
 * kube-controller-manager and kube-scheduler: started once the apiserver is ready, since
 * before RBAC is bootstrapped they exit and the supervisor's backoff would delay them.
 * Their secure ports serve no delegated authn/authz (loopback in the node namespace only),
 * which spares them the wait for the extension-apiserver-authentication ConfigMap.
 */
export function controllerCommands(input: ClusterCommandsInput): ComponentCommand[] {
  return [
    ...controlPlaneCommands(input).filter((c) => c.name !== CONTROL_PLANE.kine && c.name !== CONTROL_PLANE.apiServer),
    {
      // tools/cluster-controllers: LoadBalancer Services get the control-plane node's address,
      // where kube-proxy answers, and their hostname under the gateway; tenants get rights on the custom resources of their CRDs;
      // and the apiserver's authorization webhook for kube-system's Secrets.
      name: CONTROL_PLANE.clusterControllers,
      command: localToolBinary("cluster-controllers"),
      args: [
        `--kubeconfig=${input.layout.kubeconfig("admin")}`,
        `--address=${input.net.nodes[0].ip}`,
        `--hostname-suffix=${clusterHostname(input.clusterId, input.clusterDomain)}`,
        `--authorizer-address=${SECRETS_AUTHORIZER_ADDRESS}`,
        `--authorizer-cert=${input.layout.pki("secrets-authorizer.crt")}`,
        `--authorizer-key=${input.layout.pki("secrets-authorizer.key")}`,
      ],
      netnsPath: input.net.nodes[0].netnsPath,
      cgroup: systemCgroup(input.clusterId),
    },
  ];
}

/**
 * For the node capacity policy (addon-manifests.ts); only its two resources are served,
 * not the rest of the group version. Shared with the datastore template's apiserver, whose
 * bootstrap objects must be those of a cluster's.
 */
export function apiServerFeatureArgs(release: KubernetesRelease): string[] {
  if (mutatingPolicyIsGA(release)) return [];
  const resources = ["mutatingadmissionpolicies", "mutatingadmissionpolicybindings"];
  return [
    "--feature-gates=MutatingAdmissionPolicy=true",
    `--runtime-config=${resources.map((r) => `${mutatingPolicyApiVersion(release)}/${r}=true`).join(",")}`,
  ];
}

/**
 * API aggregation, with kubeadm's values (cmd/kubeadm/app/phases/controlplane/manifests.go,
 * getAPIServerCommand): the apiserver proxies requests for an APIService's group with the
 * front-proxy client certificate and the caller's identity in X-Remote-* headers, and
 * publishes the requestheader settings in kube-system/extension-apiserver-authentication,
 * where aggregated servers (metrics-server, any extension apiserver) read which CA and name
 * to trust those headers from. Without them that ConfigMap has no requestheader-client-ca-file
 * and every aggregated API answers 403. The CA is the front-proxy CA, never the cluster's
 * (cluster-assets.ts, writeFrontProxyAssets). The apiserver trusts the headers itself only
 * from that CA's certificates with the allowed name.
 *
 * No --enable-aggregator-routing: the apiserver runs in the control-plane node's network
 * namespace, where that node's kube-proxy programs the Service rules (its OUTPUT chain
 * applies to the apiserver's own connections), so it reaches an APIService's Service by its
 * ClusterIP, as it already does for admission and conversion webhooks (the same service
 * resolver; kube-apiserver's --enable-aggregator-routing switches both to endpoint IPs).
 */
export function apiAggregationArgs(pki: (file: string) => string): string[] {
  return [
    `--requestheader-client-ca-file=${pki("front-proxy-ca.crt")}`,
    `--requestheader-allowed-names=${FRONT_PROXY_CLIENT_NAME}`,
    "--requestheader-extra-headers-prefix=X-Remote-Extra-",
    "--requestheader-group-headers=X-Remote-Group",
    "--requestheader-username-headers=X-Remote-User",
    `--proxy-client-cert-file=${pki("front-proxy-client.crt")}`,
    `--proxy-client-key-file=${pki("front-proxy-client.key")}`,
  ];
}

function controlPlaneCommands({ clusterId, release, layout, net }: ClusterCommandsInput): ComponentCommand[] {
  const cp = net.nodes[0];
  const cgroup = systemCgroup(clusterId);
  const pki = (f: string) => layout.pki(f);
  return [
    {
      name: CONTROL_PLANE.kine,
      command: addonBinary("kine"),
      args: [
        "--endpoint",
        // No VACUUM at each start (kine's default, pkg/drivers/sqlite/sqlite.go): it rewrites the
        // whole file before kine listens, and the apiserver's first reads wait on it, longer the
        // more a cluster was used. A cluster's datastore is thrown away with it, and SQLite reuses
        // the pages that compaction frees.
        `sqlite://${layout.kineDir}/state.db?_journal=WAL&cache=shared&_busy_timeout=30000&_txlock=immediate&_kine_disable_startup_vacuum=true`,
        "--listen-address",
        `unix://${layout.kineSocket}`,
        "--metrics-bind-address",
        "0",
        // The apiserver compacts (every 5 min, to the revision of 5 min before), as it does etcd;
        // kine's default keeps the last 1000 revisions whatever it is told, so a quiet cluster
        // never compacts and a continue token never expires (conformance: "API chunking should
        // support continue listing from the last key if the original version has been compacted
        // away" failed after its 10-minute wait). 0 keeps what etcd would keep.
        "--compact-min-retain",
        "0",
        // Periodic progress notifications on every watch (kine's default 5 s; etcd's 10 min): the
        // apiserver asks for progress when it needs it (consistent reads from its cache, kine
        // answers ProgressRequest), so these only keep bookmarks fresh. Measured on an idle 1.37
        // cluster: kine 0.013 -> 0.008 core, kube-apiserver 0.037 -> 0.032.
        "--watch-progress-notify-interval",
        "60s",
      ],
      cgroup,
    },
    {
      name: CONTROL_PLANE.apiServer,
      command: kubernetesBinary(release, "kube-apiserver"),
      netnsPath: cp.netnsPath,
      cgroup,
      // Most of an idle cluster's private memory is the apiserver's Go heap, and Go lets it
      // grow to twice what is live: at GOGC=50 it holds 158 MiB instead of 190 (idle
      // cluster 305 MiB instead of 338), for ~0.15 s more until it serves (measured A/B).
      // Lower costs too much start: GOGC=25 holds 139 MiB instead of 163-168 at the same
      // idle CPU, but the bare kine+apiserver reaches /readyz in 3.66 s instead of 2.58
      // (medians of 3 interleaved, 2026-12-01); its live heap at idle is ~86 MiB (heap
      // profile: OpenAPI models, routes, the scheme), which no flag shrinks.
      env: { GOGC: "50" },
      args: [
        `--etcd-servers=unix://${layout.kineSocket}`,
        `--advertise-address=${cp.ip}`,
        "--bind-address=0.0.0.0",
        "--secure-port=6443",
        `--service-cluster-ip-range=${SERVICE_CIDR}`,
        `--client-ca-file=${pki("ca.crt")}`,
        `--tls-cert-file=${pki("apiserver.crt")}`,
        `--tls-private-key-file=${pki("apiserver.key")}`,
        `--kubelet-client-certificate=${pki("apiserver-kubelet-client.crt")}`,
        `--kubelet-client-key=${pki("apiserver-kubelet-client.key")}`,
        "--kubelet-preferred-address-types=InternalIP",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        `--service-account-key-file=${pki("sa.pub")}`,
        `--service-account-signing-key-file=${pki("sa.key")}`,
        // Node, tempkube's Secrets webhook, RBAC (tenant-guards.ts, authorizationConfig).
        `--authorization-config=${layout.config("authorization.yaml")}`,
        "--enable-admission-plugins=NodeRestriction",
        ...apiAggregationArgs(pki),
        ...apiServerFeatureArgs(release),
        `--admission-control-config-file=${layout.config("admission.yaml")}`,
        "--allow-privileged=true",
        "--profiling=false",
        "--v=1",
      ],
    },
    {
      name: CONTROL_PLANE.controllerManager,
      command: kubernetesBinary(release, "kube-controller-manager"),
      netnsPath: cp.netnsPath,
      cgroup,
      args: [
        `--kubeconfig=${layout.kubeconfig("controller-manager")}`,
        "--bind-address=127.0.0.1",
        `--tls-cert-file=${pki("controller-manager-serving.crt")}`,
        `--tls-private-key-file=${pki("controller-manager-serving.key")}`,
        "--leader-elect=false",
        "--use-service-account-credentials=true",
        // Each controller gets its own credentials at start-up; at the default 20 QPS that
        // alone spaces controllers 150 ms apart and delays the first ServiceAccount by seconds.
        "--kube-api-qps=200",
        "--kube-api-burst=400",
        `--service-account-private-key-file=${pki("sa.key")}`,
        `--root-ca-file=${pki("ca.crt")}`,
        `--cluster-signing-cert-file=${pki("ca.crt")}`,
        `--cluster-signing-key-file=${pki("ca.key")}`,
        `--cluster-name=${clusterId}`,
        `--cluster-cidr=${net.clusterCidr}`,
        "--allocate-node-cidrs=false",
        "--profiling=false",
        "--v=1",
      ],
    },
    {
      name: CONTROL_PLANE.scheduler,
      command: kubernetesBinary(release, "kube-scheduler"),
      netnsPath: cp.netnsPath,
      cgroup,
      args: [
        `--kubeconfig=${layout.kubeconfig("scheduler")}`,
        "--bind-address=127.0.0.1",
        `--tls-cert-file=${pki("scheduler-serving.crt")}`,
        `--tls-private-key-file=${pki("scheduler-serving.key")}`,
        "--leader-elect=false",
        "--profiling=false",
        "--v=1",
      ],
    },
  ];
}

export function containerdCommand(input: ClusterCommandsInput, node: NodeNetwork): ComponentCommand {
  const nl = input.layout.node(node.name);
  const runtime = nodeContainerRuntime();
  return {
    name: nodeComponentName(NODE_COMPONENTS.containerd, node.name),
    command: runtime.containerd,
    args: ["--config", nl.containerdConfig],
    env: { PATH: runtime.path },
    netnsPath: node.netnsPath,
    cgroup: systemCgroup(input.clusterId),
  };
}

export function kubeletCommand(input: ClusterCommandsInput, node: NodeNetwork): ComponentCommand {
  const nl = input.layout.node(node.name);
  return {
    name: nodeComponentName(NODE_COMPONENTS.kubelet, node.name),
    command: kubernetesBinary(input.kubeletRelease, "kubelet"),
    netnsPath: node.netnsPath,
    cgroup: systemCgroup(input.clusterId),
    args: [
      `--config=${nl.kubeletConfig}`,
      `--kubeconfig=${nl.kubeletKubeconfig}`,
      `--root-dir=${nl.kubeletRoot}`,
      `--hostname-override=${node.name}`,
      `--node-ip=${node.ip}`,
      `--node-labels=${[
        `smek-cluster-id=${input.clusterId}`,
        ...(node === input.net.nodes[0] ? [`${CONTROL_PLANE_NODE_LABEL}=true`] : []),
      ].join(",")}`,
      "--v=1",
    ],
  };
}

export function kubeProxyCommand(input: ClusterCommandsInput, node: NodeNetwork): ComponentCommand {
  const nl = input.layout.node(node.name);
  return {
    name: nodeComponentName(NODE_COMPONENTS.kubeProxy, node.name),
    // The control plane's release, whatever the kubelet's: kube-proxy does not touch cgroups
    // and may be up to three minors newer than the kubelet beside it (version-skew policy).
    command: kubernetesBinary(input.release, "kube-proxy"),
    netnsPath: node.netnsPath,
    cgroup: systemCgroup(input.clusterId),
    args: [`--config=${nl.kubeProxyConfig}`, "--v=1"],
  };
}
