import YAML from "yaml";
import { canLowerOomScore } from "../../host/capabilities.js";
import { IMAGES } from "../../setup/catalogue.js";
import type { NodeLayout } from "./layout.js";
import { DNS_SERVICE_IP, type ClusterNetwork, type NodeNetwork } from "./network.js";

export const STARTING_TAINT = "tempkube.io/starting";
/** The control plane's node, whose network namespace the apiserver listens in (CoreDNS runs there). */
export const CONTROL_PLANE_NODE_LABEL = "tempkube.io/control-plane";

/**
 * Per-node containerd 2: own root, state, sockets and CNI directory; cgroupfs; the built
 * runc; images from the template and the host registry. Written in configuration version 4,
 * containerd 2.4's own (`containerd config migrate` prints it; an older version is migrated in
 * memory at every start, with a warning). What moved since 1.6's version 2: the CRI plugin is
 * split into `io.containerd.cri.v1.images` (snapshotter, the sandbox image as
 * `pinned_images.sandbox`, registry hosts) and `io.containerd.cri.v1.runtime` (runtimes, CNI
 * as `bin_dirs`, restrict_oom_score_adj, netns_mounts_under_state_dir, unprivileged ports);
 * in version 4 the server's sockets are plugins too (`io.containerd.server.v1.grpc`,
 * `.ttrpc`, `.metrics`): an omitted ttrpc block would mean the host-wide
 * /run/containerd/containerd.sock.ttrpc, so every address is set. NRI is on by default in 2.x
 * and listens on the host-wide /var/run/nri/nri.sock, which every node's containerd would
 * fight over: disabled. No `imports`: the drop-in directory /etc/containerd/conf.d is read
 * only when a configuration names it (cmd/containerd/server/config/config.go resolves the
 * loaded file's own imports), so nothing on the host changes a node's containerd.
 */
export function containerdConfig(node: NodeLayout, runc: string): string {
  return `version = 4
root = "${node.containerdRoot}"
state = "${node.containerdState}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.erofs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing", "io.containerd.nri.v1.nri"]

[plugins."io.containerd.server.v1.grpc"]
  address = "${node.containerdSocket}"

[plugins."io.containerd.server.v1.ttrpc"]
  address = "${node.containerdSocket}.ttrpc"

[plugins."io.containerd.server.v1.metrics"]
  address = ""

[plugins."io.containerd.server.v1.debug"]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "${node.root}/containerd/opt"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "${IMAGES.pause}"
  [plugins."io.containerd.cri.v1.images".registry]
    config_path = "${node.registryHostsDir}"

[plugins."io.containerd.cri.v1.runtime"]
  enable_unprivileged_ports = true
  restrict_oom_score_adj = ${!canLowerOomScore()}
  # Pod network namespaces under the node's state, not the host-wide /run/netns.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "${runc}"
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "${node.cniConfDir}"
`;
}

/**
 * CNI bridge inside the node's namespace; host-local IPAM over the node's pod range, with
 * its allocations in the node's directory (the default /var/lib/cni is shared by all).
 */
export function cniConfig(net: NodeNetwork, ipamDir: string): string {
  return JSON.stringify(
    {
      cniVersion: "1.0.0",
      name: "tempkube",
      plugins: [
        {
          type: "bridge",
          bridge: "cni0",
          isGateway: true,
          ipMasq: true,
          hairpinMode: true,
          ipam: {
            type: "host-local",
            dataDir: ipamDir,
            ranges: [[{ subnet: net.podCidr }]],
            routes: [{ dst: "0.0.0.0/0" }],
          },
        },
        { type: "portmap", capabilities: { portMappings: true } },
      ],
    },
    null,
    2,
  );
}

export interface KubeletConfigInput {
  node: NodeLayout;
  net: NodeNetwork;
  cgroupRoot: string;
  kubeconfig: string;
  caFile: string;
  certFile: string;
  keyFile: string;
}

/**
 * Several kubelets share one host: each has its own root dir, cgroupRoot, socket and log
 * dir; image GC and disk eviction are relaxed so locally imported images are never removed
 * (no registry could bring them back).
 */
export function kubeletConfig(k: KubeletConfigInput): string {
  return YAML.stringify({
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: k.caFile } },
    authorization: { mode: "Webhook" },
    address: k.net.ip,
    port: 10250,
    readOnlyPort: 0,
    healthzPort: 0,
    tlsCertFile: k.certFile,
    tlsPrivateKeyFile: k.keyFile,
    cgroupDriver: "cgroupfs",
    cgroupRoot: k.cgroupRoot,
    cgroupsPerQOS: true,
    containerRuntimeEndpoint: `unix://${k.node.containerdSocket}`,
    clusterDomain: "cluster.local",
    clusterDNS: [DNS_SERVICE_IP],
    resolvConf: k.node.resolvConf,
    podLogsDir: k.node.podLogDir,
    failSwapOn: false,
    ...(canLowerOomScore() ? {} : { oomScoreAdj: 0 }),
    failCgroupV1: false,
    protectKernelDefaults: false,
    makeIPTablesUtilChains: true,
    localStorageCapacityIsolation: false,
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    imageMinimumGCAge: "87600h",
    evictionHard: {
      "memory.available": "1Mi",
      "nodefs.available": "1%",
      "nodefs.inodesFree": "1%",
      "imagefs.available": "1%",
    },
    evictionPressureTransitionPeriod: "5s",
    // The node capacity policy (addon-manifests.ts) rewrites the capacity the kubelet
    // computes, so each computation differs from the stored Node and is posted
    // (kubelet_node_status.go tryUpdateNodeStatus: changed || report period expired):
    // a status write every 10s, whatever nodeStatusReportFrequency says (measured: 5.7
    // node PATCHes and 33 Node watch events a minute at idle). Kept at upstream's 10s: the
    // kubelet also reports volumesInUse this way, and attachable volumes mount only once
    // reported (operation_generator.go VerifyControllerAttachedVolume: ReportedInUse);
    // 1m cut the writes to ~1 a minute but not the idle CPU (A/B, 3 × 60 s).
    nodeStatusUpdateFrequency: "10s",
    nodeStatusReportFrequency: "1m",
    syncFrequency: "10s",
    fileCheckFrequency: "10s",
    serializeImagePulls: false,
    maxPods: 110,
    podCIDR: k.net.podCidr,
    enableServer: true,
    staticPodPath: "",
    shutdownGracePeriod: "0s",
    registerNode: true,
    // Lifted by tempkube once kube-proxy has written its rules (see firstBoot in boot-steps.ts).
    registerWithTaints: [{ key: STARTING_TAINT, effect: "NoSchedule" }],
    rotateCertificates: false,
    serverTLSBootstrap: false,
  });
}

export function kubeProxyConfig(net: ClusterNetwork, node: NodeNetwork, kubeconfig: string): string {
  return YAML.stringify({
    apiVersion: "kubeproxy.config.k8s.io/v1alpha1",
    kind: "KubeProxyConfiguration",
    clientConnection: { kubeconfig },
    mode: "iptables",
    clusterCIDR: net.clusterCidr,
    hostnameOverride: node.name,
    bindAddress: node.ip,
    // Polled by tempkube (/livez: /healthz also wants the Node, which the kubelet has not
    // registered yet): kubelets start only once kube-proxy has written its rules.
    healthzBindAddress: `${node.ip}:10256`,
    metricsBindAddress: "",
    // The conntrack table size is not namespaced; leave the host's as it is.
    conntrack: { maxPerCore: 0, min: 0 },
    ...(canLowerOomScore() ? {} : { oomScoreAdj: 0 }),
    // Rules follow endpoint changes within 0.1 s rather than 1 s (a restarted CoreDNS's new
    // address, say); a tenant cluster's rule set is small, so syncing it is cheap.
    iptables: { syncPeriod: "30s", minSyncPeriod: "100ms" },
  });
}

/** Pod Security defaults: baseline enforced (privileged when the spec allows it), kube-system exempt. */
export function admissionConfig(privileged: boolean): string {
  const level = privileged ? "privileged" : "baseline";
  return YAML.stringify({
    apiVersion: "apiserver.config.k8s.io/v1",
    kind: "AdmissionConfiguration",
    plugins: [
      {
        name: "PodSecurity",
        configuration: {
          apiVersion: "pod-security.admission.config.k8s.io/v1",
          kind: "PodSecurityConfiguration",
          defaults: {
            enforce: level,
            "enforce-version": "latest",
            audit: level,
            "audit-version": "latest",
            warn: level,
            "warn-version": "latest",
          },
          exemptions: { usernames: [], runtimeClasses: [], namespaces: ["kube-system"] },
        },
      },
    ],
  });
}
