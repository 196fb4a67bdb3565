import { join } from "node:path";
import { dataDir } from "../../util/paths.js";

/** Where the clusters of a data dir live, one directory each. */
export function clustersDir(base = dataDir()): string {
  return join(base, "clusters");
}

/** Where each piece of a cluster lives on disk. Everything of a cluster is under `root`. */
export class ClusterLayout {
  readonly root: string;
  constructor(
    readonly clusterId: string,
    base = clustersDir(),
  ) {
    this.root = join(base, clusterId);
  }
  get stateFile() {
    return join(this.root, "state.json");
  }
  get pkiDir() {
    return join(this.root, "pki");
  }
  pki(file: string) {
    return join(this.root, "pki", file);
  }
  get kineDir() {
    return join(this.root, "kine");
  }
  get kineSocket() {
    return join(this.root, "kine", "kine.sock");
  }
  get configDir() {
    return join(this.root, "config");
  }
  config(file: string) {
    return join(this.root, "config", file);
  }
  kubeconfig(user: string) {
    return join(this.root, "kubeconfigs", `${user}.kubeconfig`);
  }
  get runDir() {
    return join(this.root, "run");
  }
  get logDir() {
    return join(this.root, "logs");
  }
  get volumesDir() {
    return join(this.root, "volumes");
  }
  node(name: string) {
    return new NodeLayout(join(this.root, "nodes", name));
  }
}

export class NodeLayout {
  constructor(readonly root: string) {}
  get containerdConfig() {
    return join(this.root, "containerd.toml");
  }
  get containerdRoot() {
    return join(this.root, "containerd", "root");
  }
  get containerdState() {
    return join(this.root, "containerd", "state");
  }
  get containerdSocket() {
    return join(this.root, "containerd.sock");
  }
  get cniConfDir() {
    return join(this.root, "cni");
  }
  get cniConfList() {
    return join(this.root, "cni", "10-tempkube.conflist");
  }
  /** host-local IPAM's allocations: which pod addresses are in use on the node. */
  get cniIpamDir() {
    return join(this.root, "cni-ipam");
  }
  /** containerd's registry hosts directory (hosts.toml per registry name, `_default` for all). */
  get registryHostsDir() {
    return join(this.root, "registry-hosts");
  }
  get kubeletRoot() {
    return join(this.root, "kubelet");
  }
  get kubeletConfig() {
    return join(this.root, "kubelet.yaml");
  }
  get kubeletKubeconfig() {
    return join(this.root, "kubelet.kubeconfig");
  }
  get kubeletCert() {
    return join(this.root, "kubelet.crt");
  }
  get kubeletKey() {
    return join(this.root, "kubelet.key");
  }
  get kubeProxyConfig() {
    return join(this.root, "kube-proxy.yaml");
  }
  get podLogDir() {
    return join(this.root, "pod-logs");
  }
  get resolvConf() {
    return join(this.root, "resolv.conf");
  }
  get importedImagesFile() {
    return join(this.root, "imported-images.json");
  }
}

/**
 * A unix socket's path must fit in sun_path: 107 bytes and a NUL. The deepest one under a
 * cluster is the kubelet's pod-resources socket, `<kubelet root>/pod-resources/<10 digits>`
 * (a temporary name it renames); longer, the kubelet exits with "bind: invalid argument".
 */
export const MAX_SOCKET_PATH = 107;
export function deepestSocketPath(layout: ClusterLayout, nodeNames: string[]): string {
  return nodeNames
    .map((n) => join(layout.node(n).kubeletRoot, "pod-resources", "0123456789"))
    .sort((a, b) => b.length - a.length)[0];
}
