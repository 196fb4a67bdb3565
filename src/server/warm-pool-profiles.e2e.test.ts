import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { parseWarmPool } from "../core/pool-profiles.js";
import { LocalRuntime } from "../runtime/local/local-runtime.js";
import { DEFAULT_KUBERNETES_MINOR, KUBERNETES_RELEASES } from "../setup/catalogue.js";
import { restCall } from "../testing/http.js";
import { Kubectl } from "../testing/kubectl.js";
import { unlessRoot } from "../testing/root.js";
import { startServer, type RunningServer } from "./server.js";

/**
 * A pool of a profile that is not the default shape (<default minor>/1-small), with real clusters: two at
 * most (the claimed one and its replacement), no egress. The rules themselves (several
 * profiles, giving way) are tested with the fake driver: service/warm-pools.test.ts.
 */
describe(
  "warm pool of a profile, end to end",
  { timeout: 10 * 60_000, skip: unlessRoot("the warm pool boots real clusters") },
  () => {
    let runtime: LocalRuntime;
    let server: RunningServer;
    let dir: string;
    let token: string;
    let existing: string[] = [];
    // The create below names no version: the pool follows the default minor.
    const profile = `${DEFAULT_KUBERNETES_MINOR}/1-small`;

    const pooledRunning = async () =>
      (await server.store.clusters.all()).filter((r) => r.pooled && r.desired === "running" && r.phase === "running");
    async function waitForPooled(what: string) {
      const deadline = Date.now() + 180_000;
      while (!(await pooledRunning()).length) {
        assert.ok(Date.now() < deadline, what);
        await new Promise((r) => setTimeout(r, 200));
      }
      return (await pooledRunning())[0]!;
    }

    before(async () => {
      // Short: the kubelet's unix sockets live deep under the data dir, within 108 bytes.
      dir = await mkdtemp("/tmp/tkw-");
      runtime = new LocalRuntime({ dataDir: dir, clusterEgress: "none" });
      existing = await runtime.list();
      const parsed = parseWarmPool(profile, {
        releases: KUBERNETES_RELEASES,
        defaultMinor: DEFAULT_KUBERNETES_MINOR,
      });
      assert.ok(parsed.problem === undefined);
      server = await startServer({
        host: "127.0.0.1",
        port: 0,
        dataDir: dir,
        warmPool: parsed.profiles,
        // Room for the claimed cluster and a replacement, with the last place left free.
        hostCapacity: 3,
        clusterEgress: "none",
      });
      token = (await readFile(server.adminTokenFile, "utf8")).trim();
    });
    after(async () => {
      await server.close();
      for (const id of await runtime.list())
        if (!existing.includes(id)) await runtime.destroy(id).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    });

    it("hands a create of the profile's shape a booted cluster of that size, refills it, and counts the hit", async () => {
      const pooled = await waitForPooled(`the ${profile} pool booted a cluster`);
      assert.equal(pooled.spec.size, "1-small");
      const made = await restCall(server.url, token, "POST", "/v1/clusters", { size: "1-small", ttlMinutes: 10 });
      assert.equal(made.status, 201);
      assert.equal(made.json.id, pooled.id, "the pooled cluster");
      assert.equal(made.json.phase, "running", "usable in the create's answer");
      const kubeconfig = await restCall(server.url, token, "GET", `/v1/clusters/${pooled.id}/kubeconfig`);
      const kubectl = await Kubectl.withKubeconfig(kubeconfig.text);
      const capacity = await kubectl.run(["get", "nodes", "-o", "jsonpath={.items[*].status.capacity.cpu}"]);
      assert.equal(capacity.trim(), "2", "the 1-small preset's CPUs: the profile's size reached the runtime");

      const replacement = await waitForPooled("the pool refilled");
      assert.notEqual(replacement.id, pooled.id);
      assert.equal(replacement.spec.size, "1-small");
      const metrics = (await restCall(server.url, undefined, "GET", "/metrics")).text.split("\n");
      assert.ok(metrics.includes(`tempkube_warm_pool_hits_total{profile="${profile}"} 1`));
      assert.ok(metrics.includes(`tempkube_warm_pool_clusters{profile="${profile}",phase="running"} 1`));
      await restCall(server.url, token, "DELETE", `/v1/clusters/${pooled.id}?wait=true`);
    });
  },
);
