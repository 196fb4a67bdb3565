import assert from "node:assert/strict";
import { it } from "node:test";
import { ephemeronClusterObjects } from "../../services/ephemeron-crd.js";
import { coreDnsService, localPath } from "./addon-manifests.js";
import { manifestObjects, objectPath } from "./apply-manifests.js";
import { tenantGuards } from "./tenant-guards.js";

it("finds the REST path of every object a boot applies, in document order", () => {
  const docs = [tenantGuards(false), coreDnsService(), localPath("/v"), ephemeronClusterObjects()].join("---\n");
  const objects = manifestObjects(docs);
  assert.ok(objects.length > 20);
  const paths = objects.map(objectPath);
  assert.ok(paths.includes("/api/v1/namespaces/kube-system/services/kube-dns"));
  assert.ok(
    paths.some((p) => /^\/apis\/admissionregistration\.k8s\.io\/v1\/validatingadmissionpolicies\/[a-z-]+$/.test(p)),
  );
  assert.ok(paths.some((p) => p.startsWith("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/")));
  const sa = paths.findIndex((p) => p.includes("/serviceaccounts/local-path-provisioner"));
  const deployment = paths.findIndex((p) => p.includes("/deployments/local-path-provisioner"));
  assert.ok(sa >= 0 && deployment > sa, "the ServiceAccount before the Deployment that uses it");
});

it("puts an object without a namespace in default, as kubectl does, and cluster-scoped ones at the top", () => {
  assert.equal(
    objectPath({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c" } }),
    "/api/v1/namespaces/default/configmaps/c",
  );
  assert.equal(
    objectPath({ apiVersion: "storage.k8s.io/v1", kind: "StorageClass", metadata: { name: "s", namespace: "x" } }),
    "/apis/storage.k8s.io/v1/storageclasses/s",
  );
});

it("refuses a kind it has no path for, and an object without a name, naming them", () => {
  assert.throws(() => objectPath({ apiVersion: "v1", kind: "Pod", metadata: { name: "p" } }), /v1 Pod/);
  assert.throws(
    () => objectPath({ apiVersion: "v1", kind: "ConfigMap", metadata: {} }),
    /ConfigMap without metadata.name/,
  );
});

it("skips empty documents", () => {
  assert.equal(manifestObjects("---\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\n").length, 1);
});
