import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  makeInformer,
  PatchStrategy,
  setHeaderOptions,
  type Informer,
  type KubernetesObject,
  type ObjectCache,
} from "@kubernetes/client-node";
import { EPHEMERON_NAMESPACE, MANAGED_SELECTOR } from "./ephemeron-children.js";
import { EPHEMERON_GROUP, EPHEMERON_PLURAL, EPHEMERON_VERSION, type Ephemeron } from "./ephemeron-types.js";

/**
 * What the controller does with a cluster's API, through @kubernetes/client-node 1.x
 * (object-parameter APIs; patches say their content type with setHeaderOptions). The
 * controller holds the cluster's admin credential: everything it creates is built from
 * ephemeron-children.ts, and Secrets are read from namespace `default` only.
 */
export type Cached<T extends KubernetesObject> = Informer<T> & ObjectCache<T>;

const CRD = { group: EPHEMERON_GROUP, version: EPHEMERON_VERSION, plural: EPHEMERON_PLURAL };
const merge = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

/** The HTTP status of a failed API call (0 when it never got an answer). */
export function apiStatus(err: unknown): number {
  return err instanceof ApiException ? err.code : 0;
}

export function describeApiError(err: unknown): string {
  if (err instanceof ApiException) {
    const body = err.body as { message?: string } | string | undefined;
    const message = typeof body === "string" ? safeMessage(body) : body?.message;
    return `HTTP ${err.code}${message ? `: ${message}` : ""}`;
  }
  return err instanceof Error ? err.message : String(err);
}

function safeMessage(body: string): string | undefined {
  try {
    return (JSON.parse(body) as { message?: string }).message;
  } catch {
    return body.slice(0, 200);
  }
}

export class EphemeronKube {
  readonly kubeConfig = new KubeConfig();
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;

  constructor(adminKubeconfig: string) {
    this.kubeConfig.loadFromFile(adminKubeconfig);
    this.core = this.kubeConfig.makeApiClient(CoreV1Api);
    this.custom = this.kubeConfig.makeApiClient(CustomObjectsApi);
  }

  ephemeronInformer(): Cached<Ephemeron & KubernetesObject> {
    return makeInformer(this.kubeConfig, `/apis/${EPHEMERON_GROUP}/${EPHEMERON_VERSION}/${EPHEMERON_PLURAL}`, () =>
      this.custom.listClusterCustomObject(CRD),
    );
  }

  podInformer(): Cached<KubernetesObject> {
    return makeInformer(
      this.kubeConfig,
      `/api/v1/namespaces/${EPHEMERON_NAMESPACE}/pods`,
      () => this.core.listNamespacedPod({ namespace: EPHEMERON_NAMESPACE, labelSelector: MANAGED_SELECTOR }),
      MANAGED_SELECTOR,
    ) as Cached<KubernetesObject>;
  }

  serviceInformer(): Cached<KubernetesObject> {
    return makeInformer(
      this.kubeConfig,
      `/api/v1/namespaces/${EPHEMERON_NAMESPACE}/services`,
      () => this.core.listNamespacedService({ namespace: EPHEMERON_NAMESPACE, labelSelector: MANAGED_SELECTOR }),
      MANAGED_SELECTOR,
    ) as Cached<KubernetesObject>;
  }

  createPod(body: object) {
    return this.core.createNamespacedPod({ namespace: EPHEMERON_NAMESPACE, body: body as never });
  }
  readPod(name: string) {
    return this.core.readNamespacedPod({ namespace: EPHEMERON_NAMESPACE, name });
  }
  /** At once (gracePeriodSeconds 0: the apiserver removes it without waiting for the kubelet), and only that Pod (uid). */
  deletePod(name: string, uid: string | undefined, gracePeriodSeconds?: number) {
    return this.core.deleteNamespacedPod({
      namespace: EPHEMERON_NAMESPACE,
      name,
      gracePeriodSeconds,
      body: { gracePeriodSeconds, ...(uid ? { preconditions: { uid } } : {}) },
    });
  }
  createService(body: object) {
    return this.core.createNamespacedService({ namespace: EPHEMERON_NAMESPACE, body: body as never });
  }
  readService(name: string) {
    return this.core.readNamespacedService({ namespace: EPHEMERON_NAMESPACE, name });
  }
  patchService(name: string, body: object) {
    return this.core.patchNamespacedService({ namespace: EPHEMERON_NAMESPACE, name, body }, merge);
  }
  deleteService(name: string, uid: string | undefined) {
    return this.core.deleteNamespacedService({
      namespace: EPHEMERON_NAMESPACE,
      name,
      body: uid ? { preconditions: { uid } } : {},
    });
  }
  readTlsSecret(name: string) {
    return this.core.readNamespacedSecret({ namespace: EPHEMERON_NAMESPACE, name });
  }
  readEphemeron(name: string): Promise<Ephemeron> {
    return this.custom.getClusterCustomObject({ ...CRD, name }) as Promise<Ephemeron>;
  }
  patchStatus(name: string, status: object) {
    return this.custom.patchClusterCustomObjectStatus({ ...CRD, name, body: { status } }, merge);
  }
  patchAnnotations(name: string, annotations: Record<string, string>) {
    return this.custom.patchClusterCustomObject({ ...CRD, name, body: { metadata: { annotations } } }, merge);
  }
  /** Background propagation, as the reference deletes: the garbage collector removes what is left of its children. */
  deleteEphemeron(name: string, uid: string | undefined) {
    return this.custom.deleteClusterCustomObject({
      ...CRD,
      name,
      propagationPolicy: "Background",
      body: { propagationPolicy: "Background", ...(uid ? { preconditions: { uid } } : {}) },
    });
  }
}
