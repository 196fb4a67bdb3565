import { join } from "node:path";
import { dataDir } from "../../util/paths.js";

/** Where each piece of a cluster lives on disk. Everything of a cluster is under `root`. */
export class ClusterLayout {
  readonly root: string;
  constructor(readonly clusterId: string, base = join(dataDir(), "clusters")) {
    this.root = join(base, clusterId);
  }
  get stateFile() { return join(this.root, "state.json"); }
  get pkiDir() { return join(this.root, "pki"); }
  pki(file: string) { return join(this.root, "pki", file); }
  get kineDir() { return join(this.root, "kine"); }
  get kineSocket() { return join(this.root, "kine", "kine.sock"); }
  get configDir() { return join(this.root, "config"); }
  config(file: string) { return join(this.root, "config", file); }
  kubeconfig(user: string) { return join(this.root, "kubeconfigs", `${user}.kubeconfig`); }
  get runDir() { return join(this.root, "run"); }
  get logDir() { return join(this.root, "logs"); }
  get volumesDir() { return join(this.root, "volumes"); }
  node(name: string) { return new NodeLayout(join(this.root, "nodes", name)); }
}

export class NodeLayout {
  constructor(readonly root: string) {}
  get containerdConfig() { return join(this.root, "containerd.toml"); }
  get containerdRoot() { return join(this.root, "containerd", "root"); }
  get containerdState() { return join(this.root, "containerd", "state"); }
  get containerdSocket() { return join(this.root, "containerd.sock"); }
  get cniConfDir() { return join(this.root, "cni"); }
  /** containerd's registry hosts directory (hosts.toml per registry name, `_default` for all). */
  get registryHostsDir() { return join(this.root, "registry-hosts"); }
  get kubeletRoot() { return join(this.root, "kubelet"); }
  get kubeletConfig() { return join(this.root, "kubelet.yaml"); }
  get kubeProxyConfig() { return join(this.root, "kube-proxy.yaml"); }
  get podLogDir() { return join(this.root, "pod-logs"); }
  get resolvConf() { return join(this.root, "resolv.conf"); }
  get importedImagesFile() { return join(this.root, "imported-images.json"); }
}
