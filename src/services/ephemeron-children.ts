import {
  EPHEMERON_GROUP,
  EPHEMERON_KIND,
  EPHEMERON_VERSION,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  NAME_LABEL,
  type Ephemeron,
  type EphemeronCondition,
} from "./ephemeron-types.js";

/**
 * The objects an Ephemeron becomes, as the reference builds them (qualified/ephemeron
 * src/controller/{pod,service}.rs): in namespace `default`, named after the Ephemeron,
 * labelled `app.kubernetes.io/name=<name>` and `app.kubernetes.io/managed-by=ephemeron`,
 * owned by it (controller + blockOwnerDeletion, so the garbage collector removes them with it).
 */
export const EPHEMERON_NAMESPACE = "default";
export const MANAGED_SELECTOR = `${MANAGED_BY_LABEL}=${MANAGED_BY}`;

interface Meta {
  name?: string;
  namespace?: string;
  labels?: Record<string, string>;
  ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean }[];
}

export function childLabels(name: string): Record<string, string> {
  return { [NAME_LABEL]: name, [MANAGED_BY_LABEL]: MANAGED_BY };
}

export function ownerReference(eph: Ephemeron) {
  return {
    apiVersion: `${EPHEMERON_GROUP}/${EPHEMERON_VERSION}`,
    kind: EPHEMERON_KIND,
    name: eph.metadata.name,
    uid: eph.metadata.uid ?? "",
    controller: true,
    blockOwnerDeletion: true,
  };
}

/**
 * Whether a child was made for this Ephemeron (this uid, not merely this name): a Pod or
 * Service of the same name that someone else made (the tenant's own, or `kubernetes` for an
 * Ephemeron named so) is never adopted, changed or deleted.
 */
export function isOwnedBy(child: { metadata?: Meta }, eph: Ephemeron): boolean {
  return (child.metadata?.ownerReferences ?? []).some(
    (o) => o.controller === true && o.kind === EPHEMERON_KIND && o.uid === eph.metadata.uid && o.uid !== undefined,
  );
}

/** The name of the Ephemeron that controls a child, if any. */
export function controllingEphemeron(child: { metadata?: Meta }): string | undefined {
  return child.metadata?.ownerReferences?.find((o) => o.controller === true && o.kind === EPHEMERON_KIND)?.name;
}

/**
 * The Pod. It carries only what the spec names (image, command, port, env values,
 * resources, probe, labels): no volumes, security context, host namespaces or service
 * account token, so what the controller (tempkube's admin in the cluster) creates is never
 * more than the tenant could create itself, and Pod Security and the tenant guards, which
 * apply to the admin too outside kube-system, see it like any other pod.
 */
export function ephemeronPod(eph: Ephemeron): Record<string, unknown> {
  const { name } = eph.metadata;
  const s = eph.spec.service;
  const probe = s.readinessProbe;
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: EPHEMERON_NAMESPACE,
      // The controller's labels last: they select the Pod and cannot be overridden (validation refuses it too).
      labels: { ...(s.podLabels ?? {}), ...childLabels(name) },
      ownerReferences: [ownerReference(eph)],
    },
    spec: {
      restartPolicy: "Always",
      enableServiceLinks: false,
      // The service needs no API credentials; the default ServiceAccount may hold the tenant's.
      automountServiceAccountToken: false,
      containers: [
        {
          name: "container",
          image: s.image,
          ...(s.imagePullPolicy ? { imagePullPolicy: s.imagePullPolicy } : {}),
          ...(s.command && s.command.length > 0 ? { command: s.command } : {}),
          ...(s.workingDir ? { workingDir: s.workingDir } : {}),
          ports: [{ containerPort: s.port, protocol: "TCP" }],
          ...(s.env && s.env.length > 0 ? { env: s.env.map((e) => ({ name: e.name, value: e.value ?? "" })) } : {}),
          ...(s.resources ? { resources: { limits: s.resources.limits, requests: s.resources.requests } } : {}),
          ...(probe
            ? {
                readinessProbe: {
                  httpGet: { path: probe.path, port: s.port },
                  ...(probe.initialDelaySeconds !== undefined
                    ? { initialDelaySeconds: probe.initialDelaySeconds }
                    : {}),
                  ...(probe.periodSeconds !== undefined ? { periodSeconds: probe.periodSeconds } : {}),
                  ...(probe.timeoutSeconds !== undefined ? { timeoutSeconds: probe.timeoutSeconds } : {}),
                },
              }
            : {}),
        },
      ],
    },
  };
}

/**
 * The Service. The reference makes a ClusterIP Service behind an Ingress; in tempkube the
 * route is the gateway, which runs on the host: the host reaches a cluster's node address
 * (where kube-proxy answers NodePorts, as it does for LoadBalancer Services) but not the
 * cluster's pod or ClusterIP ranges, which exist only inside the cluster's network
 * namespace. So the Service is a NodePort and the route's target is `<node address>:<node port>`.
 */
export function ephemeronService(eph: Ephemeron): Record<string, unknown> {
  const { name } = eph.metadata;
  const port = eph.spec.service.port;
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name,
      namespace: EPHEMERON_NAMESPACE,
      labels: childLabels(name),
      ownerReferences: [ownerReference(eph)],
    },
    spec: {
      type: "NodePort",
      selector: childLabels(name),
      ports: [{ name: "http", protocol: "TCP", port, targetPort: port }],
    },
  };
}

interface ServiceLike {
  metadata?: Meta;
  spec?: {
    type?: string;
    selector?: Record<string, string>;
    ports?: { port?: number; targetPort?: number | string; nodePort?: number; protocol?: string }[];
  };
}

/** The Service's node port when it still is the one this Ephemeron needs (else it is patched back). */
export function serviceNodePort(svc: ServiceLike, eph: Ephemeron): number | undefined {
  const spec = svc.spec;
  const want = childLabels(eph.metadata.name);
  const port = spec?.ports?.length === 1 ? spec.ports[0] : undefined;
  const selectorOk =
    Object.keys(spec?.selector ?? {}).length === 2 && Object.entries(want).every(([k, v]) => spec?.selector?.[k] === v);
  if (spec?.type !== "NodePort" || !selectorOk || !port) return undefined;
  if (port.port !== eph.spec.service.port || port.targetPort !== eph.spec.service.port) return undefined;
  // The apiserver allocates from --service-node-port-range (30000-32767 by default); the
  // route never points at anything else on the node, whatever the Service was edited to.
  const nodePort = port.nodePort;
  return nodePort !== undefined && Number.isInteger(nodePort) && nodePort >= 30000 && nodePort <= 32767
    ? nodePort
    : undefined;
}

/** The Service's spec as the controller wants it back after someone changed it (merge patch). */
export function serviceSpecPatch(eph: Ephemeron): Record<string, unknown> {
  return { spec: (ephemeronService(eph) as { spec: unknown }).spec };
}

interface PodLike {
  metadata?: Meta;
  status?: {
    phase?: string;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
    containerStatuses?: {
      ready?: boolean;
      state?: {
        waiting?: { reason?: string; message?: string };
        terminated?: { reason?: string; message?: string; exitCode?: number };
      };
    }[];
  };
}

/** Waiting reasons that say the Pod will not become ready by itself (kubelet pkg/kubelet/images/types.go, kuberuntime). */
const STUCK = new Set([
  "ErrImagePull",
  "ImagePullBackOff",
  "InvalidImageName",
  "ErrImageNeverPull",
  "CreateContainerConfigError",
  "CreateContainerError",
  "CrashLoopBackOff",
  "RunContainerError",
]);

export type ConditionValue = Pick<EphemeronCondition, "status" | "reason" | "message">;

/** PodReady from the Pod: its Ready condition, or the container's waiting reason (a bad image says so). */
export function podReadiness(pod: PodLike | undefined): ConditionValue {
  if (!pod) return { status: "False", reason: "PodMissing", message: "the Pod does not exist (yet)" };
  const ready = pod.status?.conditions?.find((c) => c.type === "Ready");
  if (ready?.status === "True") return { status: "True", reason: "PodReady" };
  const container = pod.status?.containerStatuses?.[0];
  const waiting = container?.state?.waiting;
  if (waiting?.reason && STUCK.has(waiting.reason))
    return { status: "False", reason: waiting.reason, message: waiting.message ?? waiting.reason };
  const terminated = container?.state?.terminated;
  if (terminated) {
    return {
      status: "False",
      reason: terminated.reason ?? "Terminated",
      message: terminated.message ?? `the container exited with code ${terminated.exitCode ?? "?"}`,
    };
  }
  const scheduled = pod.status?.conditions?.find((c) => c.type === "PodScheduled");
  if (scheduled?.status === "False")
    return { status: "False", reason: scheduled.reason ?? "Unschedulable", message: scheduled.message ?? "" };
  return {
    status: "False",
    reason: waiting?.reason ?? "PodNotReady",
    message: waiting?.message ?? ready?.message ?? `phase ${pod.status?.phase ?? "Pending"}`,
  };
}
