import { CORE_SCHEMA, loadAll } from "js-yaml";
import type { KubernetesRelease } from "../../setup/catalogue.js";
import { kubernetesBinary } from "../../setup/artifact-paths.js";
import { TempkubeError } from "../../util/errors.js";
import { run } from "../../util/exec.js";
import type { KubeApi } from "./kube-api.js";

/** `kubectl apply --server-side` of YAML documents, as the admin of kubeconfig (the datastore template's one-time build). */
export async function applyManifests(release: KubernetesRelease, kubeconfig: string, docs: string): Promise<void> {
  await run(
    kubernetesBinary(release, "kubectl"),
    ["--kubeconfig", kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", "-"],
    { input: docs, timeoutMs: 60_000 },
  );
}

/** The resource of each kind tempkube writes into a cluster on every boot: plural, and whether namespaced. */
const RESOURCES: Record<string, { plural: string; namespaced: boolean }> = {
  "v1/ConfigMap": { plural: "configmaps", namespaced: true },
  "v1/Namespace": { plural: "namespaces", namespaced: false },
  "v1/Service": { plural: "services", namespaced: true },
  "v1/ServiceAccount": { plural: "serviceaccounts", namespaced: true },
  "apps/v1/Deployment": { plural: "deployments", namespaced: true },
  "rbac.authorization.k8s.io/v1/ClusterRole": { plural: "clusterroles", namespaced: false },
  "rbac.authorization.k8s.io/v1/ClusterRoleBinding": { plural: "clusterrolebindings", namespaced: false },
  "rbac.authorization.k8s.io/v1/Role": { plural: "roles", namespaced: true },
  "rbac.authorization.k8s.io/v1/RoleBinding": { plural: "rolebindings", namespaced: true },
  "storage.k8s.io/v1/StorageClass": { plural: "storageclasses", namespaced: false },
  "apiextensions.k8s.io/v1/CustomResourceDefinition": { plural: "customresourcedefinitions", namespaced: false },
  "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy": {
    plural: "validatingadmissionpolicies",
    namespaced: false,
  },
  "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicyBinding": {
    plural: "validatingadmissionpolicybindings",
    namespaced: false,
  },
};

interface ManifestObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string };
}

/** The object's REST path, from RESOURCES (no discovery: every kind written at boot is known). */
export function objectPath(object: ManifestObject): string {
  const { apiVersion, kind } = object;
  const name = object.metadata?.name;
  const resource = RESOURCES[`${apiVersion}/${kind}`];
  if (!resource) throw new TempkubeError("runtime", `no REST path known for ${apiVersion} ${kind}`);
  if (!name) throw new TempkubeError("runtime", `a ${kind} without metadata.name`);
  const group = apiVersion!.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const namespace = resource.namespaced ? `/namespaces/${object.metadata?.namespace ?? "default"}` : "";
  return `${group}${namespace}/${resource.plural}/${name}`;
}

/**
 * The non-empty documents of a YAML stream, as objects. js-yaml rather than \`yaml\` (which
 * writes tempkube's YAML): the same objects, parsed ~10x faster (a boot's ~30 documents in
 * ~10 ms against ~100-140 ms on a 2-core host, while the boot is short of CPU).
 */
export function manifestObjects(docs: string): ManifestObject[] {
  // The YAML 1.2 core schema, as `yaml` reads it: no timestamps turned into dates.
  return loadAll(docs, undefined, { schema: CORE_SCHEMA }).filter(
    (o): o is ManifestObject => o !== null && typeof o === "object",
  );
}

/**
 * The same server-side apply as `kubectl apply --server-side --force-conflicts` (its field
 * manager, `kubectl`, so the objects of earlier boots keep one owner), sent from here: a
 * kubectl process costs ~0.3 s of CPU, and its check that the API takes `fieldValidation`
 * reads OpenAPI v3, which a new apiserver first has to build (~0.4 s of its CPU, profiled)
 * while the boot is short of CPU. In document order, as kubectl does (a ServiceAccount
 * before the Deployment whose pods use it).
 */
export async function applyObjects(api: KubeApi, docs: string): Promise<void> {
  for (const object of manifestObjects(docs)) {
    const path = objectPath(object);
    const res = await api.apply(path, object, { fieldManager: "kubectl", strict: true, timeoutMs: 15_000 });
    if (res.status !== 200 && res.status !== 201) {
      const message = (res.body as { message?: string } | undefined)?.message ?? JSON.stringify(res.body);
      throw new TempkubeError(
        "runtime",
        `could not apply ${object.kind} ${object.metadata?.name}: HTTP ${res.status}: ${message}`,
      );
    }
  }
}
