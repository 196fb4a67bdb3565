import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { newClusterId } from "../core/cluster-spec.js";
import { LocalRuntime } from "../runtime/local/local-runtime.js";
import { DEFAULT_KUBERNETES_MINOR } from "../setup/catalogue.js";
import { Kubectl } from "../testing/kubectl.js";
import { unlessRoot } from "../testing/root.js";
import { KubeEphemeronApi } from "./ephemeron-api.js";
import {
  EPHEMERON_GROUP,
  EPHEMERON_KIND,
  EPHEMERON_PLURAL,
  EPHEMERON_VERSION,
  HOST_ANNOTATION,
  type Ephemeron,
} from "./ephemeron-types.js";

/**
 * Just enough of the Ephemeron CRD for the API client to be tried on a real API server: the
 * controller's helper generates the real one (names and scope are the contract's, the schema
 * here takes anything).
 */
const CRD = {
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: `${EPHEMERON_PLURAL}.${EPHEMERON_GROUP}` },
  spec: {
    group: EPHEMERON_GROUP,
    scope: "Cluster",
    names: { kind: EPHEMERON_KIND, plural: EPHEMERON_PLURAL, singular: "ephemeron" },
    versions: [
      {
        name: EPHEMERON_VERSION,
        served: true,
        storage: true,
        subresources: { status: {} },
        schema: {
          openAPIV3Schema: {
            type: "object",
            properties: { spec: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
            "x-kubernetes-preserve-unknown-fields": true,
          },
        },
      },
    ],
  },
};

const ephemeron = (name: string, labels: Record<string, string> = {}): Ephemeron => ({
  apiVersion: `${EPHEMERON_GROUP}/${EPHEMERON_VERSION}`,
  kind: EPHEMERON_KIND,
  metadata: { name, labels, annotations: { "ephemerons.qualified.io/created-by": "u.app" } },
  spec: { expirationTime: "2030-01-01T00:00:00.000Z", service: { image: "busybox:1.37", port: 80 } },
});

/** KubeEphemeronApi (client-node 1.4) against a real API server: create, get, list, patch, delete, watch. */
describe(
  "EphemeronApi over @kubernetes/client-node on a real cluster",
  { timeout: 10 * 60_000, skip: unlessRoot("it boots a real cluster") },
  () => {
    let dir: string;
    let runtime: LocalRuntime;
    const id = `eapi${newClusterId().slice(0, 6)}`;
    let kubectl: Kubectl;
    let api: KubeEphemeronApi;

    before(async () => {
      dir = await mkdtemp("/tmp/tksa-");
      runtime = new LocalRuntime({ dataDir: dir });
      const { credentials } = await runtime.provision({
        id,
        kubernetesVersion: DEFAULT_KUBERNETES_MINOR,
        privileged: false,
        size: "1-small",
        workers: 0,
      });
      kubectl = await Kubectl.withKubeconfig(credentials.adminKubeconfig);
      await kubectl.run(["apply", "-f", "-"], JSON.stringify(CRD));
      await kubectl.run(["wait", "--for=condition=Established", `crd/${EPHEMERON_PLURAL}.${EPHEMERON_GROUP}`]);
      const file = join(dir, "admin.kubeconfig");
      await writeFile(file, credentials.adminKubeconfig, { mode: 0o600 });
      api = await KubeEphemeronApi.fromKubeconfigFile(file);
    });
    after(async () => {
      await runtime?.destroy(id).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    });

    it("creates, reads, lists by label, moves the expiry, deletes; refusals as the project's errors", async () => {
      const made = await api.create(ephemeron("one", { team: "a" }));
      assert.ok(made.metadata.uid && made.metadata.resourceVersion);
      await api.create(ephemeron("two"));
      await assert.rejects(api.create(ephemeron("one")), (e: Error & { type?: string }) => e.type === "conflict");
      await assert.rejects(
        api.create(ephemeron("Not_A_Name")),
        (e: Error & { type?: string }) => e.type === "invalid-input" && /Not_A_Name/.test(e.message),
      );
      assert.equal((await api.get("one"))?.spec.service.image, "busybox:1.37");
      assert.equal(await api.get("missing"), undefined);
      assert.deepEqual((await api.list()).map((e) => e.metadata.name).sort(), ["one", "two"]);
      assert.deepEqual(
        (await api.list("team=a")).map((e) => e.metadata.name),
        ["one"],
      );
      const moved = await api.patchExpiration("one", "2031-02-03T04:05:06.000Z");
      assert.equal(moved.spec.expirationTime, "2031-02-03T04:05:06.000Z");
      assert.equal(moved.spec.service.port, 80, "a merge patch: the rest of the spec stays");
      await assert.rejects(
        api.patchExpiration("missing", "2031-01-01T00:00:00Z"),
        (e: Error & { type?: string }) => e.type === "not-found",
      );
      assert.equal(await api.delete("two"), true);
      assert.equal(await api.delete("two"), false);
    });

    it("waits by watching: sees the host annotation when it comes, the deletion, and gives up at the timeout", async () => {
      const started = Date.now();
      const annotate = setTimeout(
        () =>
          void kubectl.run([
            "annotate",
            `${EPHEMERON_PLURAL}.${EPHEMERON_GROUP}/one`,
            `${HOST_ANNOTATION}=one.example`,
          ]),
        500,
      );
      try {
        const served = await api.waitFor("one", (e) => !!e?.metadata.annotations?.[HOST_ANNOTATION], 30_000);
        assert.equal(served?.metadata.annotations?.[HOST_ANNOTATION], "one.example");
        assert.ok(Date.now() - started < 15_000);
      } finally {
        clearTimeout(annotate);
      }
      const timedOut = Date.now();
      const still = await api.waitFor("one", (e) => e === undefined, 1_000);
      assert.equal(still?.metadata.name, "one", "the last state seen");
      assert.ok(Date.now() - timedOut < 5_000);
      setTimeout(() => void api.delete("one"), 300);
      assert.equal(await api.waitFor("one", (e) => e === undefined, 30_000), undefined);
    });

    it("says the services cluster cannot be reached, as a host problem", async () => {
      const file = join(dir, "nowhere.kubeconfig");
      await writeFile(
        file,
        (await import("yaml")).default.stringify({
          apiVersion: "v1",
          kind: "Config",
          clusters: [{ name: "c", cluster: { server: "https://127.0.0.1:1", "insecure-skip-tls-verify": true } }],
          users: [{ name: "u", user: { token: "x" } }],
          contexts: [{ name: "c", context: { cluster: "c", user: "u" } }],
          "current-context": "c",
        }),
      );
      const nowhere = await KubeEphemeronApi.fromKubeconfigFile(file);
      await assert.rejects(
        nowhere.list(),
        (e: Error & { type?: string }) => e.type === "host" && /services cluster: list failed/.test(e.message),
      );
      await assert.rejects(
        KubeEphemeronApi.fromKubeconfigFile(join(dir, "none")),
        (e: Error & { type?: string }) => e.type === "host" && /cannot read its kubeconfig/.test(e.message),
      );
    });
  },
);
