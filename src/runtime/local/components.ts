/**
 * The names of a cluster's processes, as the supervisor knows them (pid and log files) and
 * as failure diagnosis picks their logs. The control plane runs once per cluster; the node
 * components once per node, named `<component>-<node>`.
 */
export const CONTROL_PLANE = {
  kine: "kine",
  apiServer: "kube-apiserver",
  controllerManager: "kube-controller-manager",
  scheduler: "kube-scheduler",
  /** tools/cluster-controllers. */
  clusterControllers: "tempkube-controllers",
} as const;

export const NODE_COMPONENTS = {
  containerd: "containerd",
  kubelet: "kubelet",
  kubeProxy: "kube-proxy",
} as const;

export type ControlPlaneComponent = (typeof CONTROL_PLANE)[keyof typeof CONTROL_PLANE];
export type NodeComponent = (typeof NODE_COMPONENTS)[keyof typeof NODE_COMPONENTS];
/** A control-plane component, or a node component on every node. */
export type ComponentKind = ControlPlaneComponent | NodeComponent;

const NODE_COMPONENT_NAMES: readonly string[] = Object.values(NODE_COMPONENTS);

/** The name of a node component's process on one node. */
export function nodeComponentName(component: NodeComponent, node: string): string {
  return `${component}-${node}`;
}

/** Whether the process `name` is an instance of `kind` (itself, or that node component on some node). */
export function isInstanceOf(name: string, kind: ComponentKind): boolean {
  return NODE_COMPONENT_NAMES.includes(kind) ? name.startsWith(`${kind}-`) : name === kind;
}
