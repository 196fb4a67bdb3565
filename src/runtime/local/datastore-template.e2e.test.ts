import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { unlessRoot } from "../../testing/root.js";
import SQLite from "better-sqlite3";
import { defaultRelease, findRelease } from "../../setup/catalogue.js";
import { BareApiServer } from "./bare-apiserver.js";
import { apiServerFeatureArgs } from "./component-commands.js";
import { ensureDatastoreTemplate, READYZ_BEFORE_BOOTSTRAP_HOOKS, seedDatastore } from "./datastore-template.js";
import { waitFor } from "./wait.js";

/** With a real kube-apiserver, kine and kube-controller-manager: the template holds the bootstrap policy and CoreDNS, nothing cluster-specific. */
describe("datastore template", { skip: unlessRoot("real clusters") }, () => {
  let base: string;
  let template: string;

  before(async () => {
    base = await mkdtemp(join(tmpdir(), "tempkube-datastore-"));
    template = await ensureDatastoreTemplate(base, defaultRelease());
  });
  after(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it("keeps the bootstrap RBAC, priority classes, flow control and CoreDNS's workload, and no namespace, Service, lease or CA bundle", () => {
    const db = new SQLite(template, { readonly: true });
    const names = (db.prepare("SELECT DISTINCT name FROM kine WHERE deleted = 0").all() as { name: string }[]).map(
      (r) => r.name,
    );
    db.close();
    for (const expected of [
      "/registry/clusterroles/system:kube-controller-manager",
      "/registry/clusterrolebindings/system:node-proxier",
      "/registry/priorityclasses/system-cluster-critical",
      "/registry/flowschemas/system-nodes",
      "/registry/serviceaccounts/default/default",
      "/registry/serviceaccounts/kube-system/deployment-controller",
      "/registry/serviceaccounts/kube-system/coredns",
      "/registry/configmaps/kube-system/coredns",
      "/registry/deployments/kube-system/coredns",
    ]) {
      assert.ok(names.includes(expected), `${expected} missing`);
    }
    // The controllers' work from the Deployment: exactly one ReplicaSet and one Pod.
    assert.equal(names.filter((n) => n.startsWith("/registry/replicasets/kube-system/coredns-")).length, 1);
    assert.equal(names.filter((n) => n.startsWith("/registry/pods/kube-system/coredns-")).length, 1);
    for (const gone of [
      "/registry/namespaces/",
      "/registry/services/",
      "/registry/leases/",
      "/registry/masterleases/",
      "/registry/events/",
      "/registry/endpointslices/",
      "/registry/configmaps/kube-system/kube-root-ca.crt",
      "/registry/configmaps/default/",
    ]) {
      assert.deepEqual(
        names.filter((n) => n.startsWith(gone)),
        [],
        `${gone} kept`,
      );
    }
  });

  it("is built once: a second call returns the same file", async () => {
    assert.equal(await ensureDatastoreTemplate(base, defaultRelease()), template);
  });

  it("keeps one template per release: building another release's leaves this one", async () => {
    // The older minor scripts/test installs beside the default.
    const other = findRelease("1.34")!;
    const otherTemplate = await ensureDatastoreTemplate(base, other);
    assert.notEqual(otherTemplate, template);
    assert.ok(existsSync(template), "the default release's template was removed");
    assert.ok(existsSync(otherTemplate));
  });

  it("serves the bootstrap RBAC as soon as the apiserver is ready without the bootstrap hooks", async () => {
    const kineDir = join(base, "cluster");
    await seedDatastore(template, kineDir);
    const release = defaultRelease();
    const startedAt = Date.now();
    const db = new SQLite(template, { readonly: true });
    const templateRevision = (db.prepare("SELECT MAX(id) AS id FROM kine").get() as { id: number }).id;
    db.close();
    await using bare = await BareApiServer.start(release, {
      datastoreFile: join(kineDir, "state.db"),
      extraArgs: apiServerFeatureArgs(release),
      readyPath: READYZ_BEFORE_BOOTSTRAP_HOOKS,
    });
    const role = await bare.api.get<{ metadata: { resourceVersion: string } }>(
      "/apis/rbac.authorization.k8s.io/v1/clusterroles/system:kube-controller-manager",
    );
    assert.equal(role.status, 200);
    // From the template (kine's revision of the row), not written anew by this apiserver's hook.
    assert.ok(
      Number(role.body!.metadata.resourceVersion) <= templateRevision,
      `${role.body!.metadata.resourceVersion} > ${templateRevision}`,
    );
    // Namespaces are this apiserver's own.
    await waitFor("namespace default", () => bare.api.ok("/api/v1/namespaces/default"), 30_000, 50);
    const ns = await bare.api.get<{ metadata: { creationTimestamp: string } }>("/api/v1/namespaces/default");
    assert.ok(Date.parse(ns.body!.metadata.creationTimestamp) >= Math.floor(startedAt / 1000) * 1000);
    await waitFor("all of /readyz", () => bare.api.ok("/readyz"), 30_000, 50);
    // CoreDNS's Pod waits for a node, with no status the template's controller manager wrote.
    type PodList = { items: { spec: { nodeName?: string } }[] };
    const pods = await bare.api.get<PodList>("/api/v1/namespaces/kube-system/pods?labelSelector=k8s-app%3Dkube-dns");
    assert.equal(pods.body!.items.length, 1);
    assert.equal(pods.body!.items[0].spec.nodeName, undefined);
    const deployment = await bare.api.get<{ status?: { conditions?: unknown[] } }>(
      "/apis/apps/v1/namespaces/kube-system/deployments/coredns",
    );
    assert.equal(deployment.body!.status?.conditions, undefined);
  });
});
