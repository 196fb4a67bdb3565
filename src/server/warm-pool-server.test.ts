import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parseWarmPool } from "../core/pool-profiles.js";
import { DEFAULT_KUBERNETES_MINOR, KUBERNETES_RELEASES } from "../setup/catalogue.js";
import { fakeInstall } from "../testing/fake-install.js";
import { FakeDriver } from "../testing/fakes.js";
import { restCall } from "../testing/http.js";
import { startServer, type RunningServer } from "./server.js";

const profiles = (text: string) => {
  const parsed = parseWarmPool(text, { releases: KUBERNETES_RELEASES, defaultMinor: DEFAULT_KUBERNETES_MINOR });
  if (parsed.problem !== undefined) throw new Error(parsed.problem);
  return parsed.profiles;
};

/** The server with warm pools per profile (fake driver): /metrics, and what it refuses at start. */
describe("server: warm pools per profile (fake driver)", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tempkube-pools-srv-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("shows hits and misses per profile, and each pool's size and count, on /metrics", async () => {
    const server: RunningServer = await startServer({
      host: "127.0.0.1",
      port: 0,
      dataDir: join(dir, "metrics"),
      driver: new FakeDriver(),
      hostCapacity: 10,
      warmPool: profiles("1.34/1-mid,1.33/1-small=2"),
    });
    try {
      const admin = (await readFile(server.adminTokenFile, "utf8")).trim();
      const ready = async () =>
        (await server.store.clusters.all()).filter((r) => r.pooled && r.phase === "running").length;
      for (let i = 0; i < 200 && (await ready()) < 3; i++) await new Promise((r) => setTimeout(r, 25));
      assert.equal(await ready(), 3, "the pools filled");
      const hit = await restCall(server.url, admin, "POST", "/v1/clusters", {
        kubernetesVersion: "1.33",
        size: "1-small",
      });
      assert.equal(hit.status, 201);
      assert.equal(hit.json.phase, "running");
      const miss = await restCall(server.url, admin, "POST", "/v1/clusters", { size: "1-large" });
      assert.equal(miss.json.phase, "pending");
      for (let i = 0; i < 200 && (await ready()) < 3; i++) await new Promise((r) => setTimeout(r, 25));
      assert.equal(await ready(), 3, "the claimed profile refilled");
      const metrics = (await restCall(server.url, undefined, "GET", "/metrics")).text;
      for (const line of [
        'tempkube_warm_pool_hits_total{profile="1.33/1-small"} 1',
        'tempkube_warm_pool_hits_total{profile="1.34/1-mid"} 0',
        'tempkube_warm_pool_misses_total{profile="1.33/1-small"} 0',
        'tempkube_warm_pool_misses_total{profile="none"} 1',
        'tempkube_warm_pool_wanted{profile="1.34/1-mid"} 1',
        'tempkube_warm_pool_wanted{profile="1.33/1-small"} 2',
        'tempkube_warm_pool_clusters{profile="1.34/1-mid",phase="running"} 1',
        'tempkube_warm_pool_clusters{profile="1.33/1-small",phase="running"} 2',
      ])
        assert.ok(metrics.split("\n").includes(line), `/metrics has ${line}`);
    } finally {
      await server.close();
    }
  });

  it("refuses at start a pool of a version that is not installed, with the command that installs it", async () => {
    // A cache holding only 1.34: 1.33 is offered but not installed.
    const cache = join(dir, "cache");
    const v134 = KUBERNETES_RELEASES.find((r) => r.minor === "1.34")!;
    await fakeInstall(cache, v134);
    const saved = process.env.TEMPKUBE_CACHE;
    process.env.TEMPKUBE_CACHE = cache;
    const dataDir = join(dir, "uninstalled");
    try {
      await assert.rejects(
        startServer({
          host: "127.0.0.1",
          port: 0,
          dataDir,
          hostCapacity: 5,
          warmPool: profiles("1.34/1-mid,1.33/1-small"),
        }),
        (e: Error & { type?: string }) =>
          e.type === "setup" &&
          /^warm pool: Kubernetes v1\.33\.\d+ is offered but not installed on this host; run on the host: tempkube versions install 1\.33 \(or leave that profile out/.test(
            e.message,
          ),
      );
      assert.deepEqual(await readdir(dataDir).catch(() => []), [], "refused before anything was made");
    } finally {
      if (saved === undefined) delete process.env.TEMPKUBE_CACHE;
      else process.env.TEMPKUBE_CACHE = saved;
    }
  });
});
