import { CONTROL_PLANE, NODE_COMPONENTS, type ComponentKind } from "./components.js";

const { kine, apiServer, controllerManager, scheduler } = CONTROL_PLANE;
const { containerd, kubelet, kubeProxy } = NODE_COMPONENTS;

/**
 * Every step of a provision and a start, in the order they run, each with the components
 * whose logs explain a failure in it (failure-diagnosis.ts). The names are what progress
 * output, error messages and `tempkube bench` show, and the keys of StepTimings.
 */
export const STEPS = [
  // provision, before any process runs
  { name: "reserve address range", explainedBy: [] },
  { name: "certificates and configuration", explainedBy: [] },
  { name: "network", explainedBy: [] },
  { name: "cgroups", explainedBy: [] },
  { name: "image store", explainedBy: [] },
  { name: "datastore", explainedBy: [] },
  // the boot (boot-steps.ts), first or again
  { name: "waiting for other boots", explainedBy: [] },
  { name: "processes started", explainedBy: [] },
  { name: "images imported", explainedBy: [containerd] },
  { name: "apiserver ready", explainedBy: [kine, apiServer] },
  { name: "kubelets started", explainedBy: [kubelet] },
  { name: "nodes registered", explainedBy: [kubelet, containerd] },
  { name: "service rules written", explainedBy: [kubeProxy] },
  { name: "addons applied", explainedBy: [apiServer] },
  { name: "nodes ready", explainedBy: [kubelet, containerd, controllerManager] },
  { name: "default service account", explainedBy: [controllerManager] },
  { name: "coredns available", explainedBy: [kubelet, scheduler, kubeProxy] },
  { name: "cluster dns answers", explainedBy: [kubeProxy] },
  { name: "controller manager started", explainedBy: [apiServer] },
  { name: "apiserver bootstrap reconciled", explainedBy: [apiServer] },
  // a start only
  { name: "pods running again", explainedBy: [] },
  { name: "service endpoints updated", explainedBy: [] },
] as const satisfies readonly { name: string; explainedBy: readonly ComponentKind[] }[];

export type Step = (typeof STEPS)[number]["name"];

/** The components whose logs explain a failure in `step`. */
export function explainedBy(step: Step): readonly ComponentKind[] {
  return STEPS.find((s) => s.name === step)?.explainedBy ?? [];
}
