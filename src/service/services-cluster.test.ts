import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { LifetimeController } from "../controller/lifetime-controller.js";
import type { ClusterSpec } from "../core/cluster-spec.js";
import { defaultPoolProfiles, type PoolShape } from "../core/pool-profiles.js";
import { NO_LIMITS, type TokenIdentity } from "../core/quota.js";
import { POOL_QUIET_AFTER_USE_MS } from "../core/warm-pool.js";
import { DEFAULT_KUBERNETES_MINOR } from "../setup/catalogue.js";
import { Store } from "../store/store.js";
import { FakeGatewayLink } from "../testing/fake-gateway-link.js";
import { FakeClock, FakeDriver, unlimitedTenant } from "../testing/fakes.js";
import { ClusterService } from "./cluster-service.js";
import { ServicesCluster } from "./services-cluster.js";

const shape: PoolShape = { kubernetesVersion: DEFAULT_KUBERNETES_MINOR, size: "1-mid", workers: 0, privileged: false };
const admin: TokenIdentity = { id: 99, name: "admin", admin: true, limits: NO_LIMITS };
const refusedAs = (type: string, text: RegExp) => (e: Error & { type?: string }) =>
  e.type === type && text.test(e.message);

/** A driver whose provisions or starts fail while `failing` says so. */
class FlakyDriver extends FakeDriver {
  failing: { provision?: string; start?: string } = {};
  override async provision(spec: ClusterSpec) {
    if (this.failing.provision) {
      this.calls.push(`provision ${spec.id} (fails)`);
      throw new Error(this.failing.provision);
    }
    return super.provision(spec);
  }
  override async start(id: string) {
    if (this.failing.start) {
      this.calls.push(`start ${id} (fails)`);
      throw new Error(this.failing.start);
    }
    return super.start(id);
  }
}

describe("services cluster (fake clock, fake driver)", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tempkube-svcc-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** One server's worth over a store: controller, cluster service, services cluster. */
  async function server(
    store: Store,
    o: { clock?: FakeClock; driver?: FakeDriver; hostCapacity?: number; pool?: number; gateway?: FakeGatewayLink } = {},
  ) {
    const clock = o.clock ?? new FakeClock();
    const driver = o.driver ?? new FlakyDriver();
    const hostCapacity = o.hostCapacity ?? 100;
    const profiles = defaultPoolProfiles(o.pool ?? 0, DEFAULT_KUBERNETES_MINOR);
    const controller = new LifetimeController(
      store,
      driver,
      clock,
      { options: { webhookUrl: "http://hook.invalid/", warningMs: 5 * 60_000 } },
      { profiles, hostCapacity },
      o.gateway,
    );
    controller.start();
    const clusters = new ClusterService(
      store,
      controller,
      driver,
      clock,
      { hostCapacity, notifications: {} },
      { warmPool: { profiles } },
    );
    const services = new ServicesCluster(store, clusters, controller, driver, clock, shape);
    await services.start();
    return {
      clock,
      driver,
      controller,
      clusters,
      services,
      async stop() {
        services.stop();
        await controller.stop();
      },
    };
  }

  it("is made once, on first use, however many ask at once; then found in the store", async () => {
    const store = await Store.openSqlite(join(dir, "once.db"));
    const s = await server(store);
    assert.equal(s.services.clusterId(), undefined, "nothing made before the first use");
    assert.equal((await store.clusters.all()).length, 0);
    const answers = await Promise.all(Array.from({ length: 6 }, () => s.services.ensure()));
    const id = answers[0].clusterId;
    assert.ok(answers.every((a) => a.clusterId === id));
    assert.equal(typeof answers[0].adminKubeconfig, "string");
    assert.deepEqual(s.driver.calls, [`provision ${id}`], "one create");
    const [r] = await store.clusters.all();
    assert.deepEqual([r.id, r.system, r.owner, r.phase, r.pooled], [id, "services", "", "running", false]);
    assert.equal(s.services.clusterId(), id);
    assert.equal((await s.services.ensure()).clusterId, id, "a later use finds it");
    assert.deepEqual(s.driver.calls, [`provision ${id}`]);
    // Even two servers on one database make one (store/clusters.ts insertSystem).
    const other = await server(store, { clock: s.clock });
    const both = await Promise.all([other.clusters.ensureSystemCluster("services", shape), s.services.ensure()]);
    assert.equal(both[0].record.id, id);
    assert.equal(both[0].made, false);
    await other.stop();
    await s.stop();
    await store.close();
  });

  it("is re-adopted after a restart (no new cluster), and started when its processes are gone", async () => {
    const file = join(dir, "restart.db");
    let store = await Store.openSqlite(file);
    const first = await server(store);
    const { clusterId } = await first.services.ensure();
    await first.stop();
    await store.close();

    store = await Store.openSqlite(file);
    const driver = new FlakyDriver();
    driver.clusters.set(clusterId, "running");
    const second = await server(store, { driver });
    assert.equal(second.services.clusterId(), clusterId, "known from the store at start, before any use");
    assert.equal((await second.services.ensure()).clusterId, clusterId);
    assert.deepEqual(driver.calls, [], "adopted as it is");
    await second.stop();

    // The host rebooted: the store says running, the runtime says stopped.
    driver.clusters.set(clusterId, "stopped");
    const third = await server(store, { driver });
    await third.controller.idle();
    assert.deepEqual(driver.calls, [`start ${clusterId}`]);
    assert.equal((await store.clusters.get(clusterId))?.phase, "running");
    assert.equal((await store.clusters.all()).length, 1);
    await third.stop();
    await store.close();
  });

  it("never expires, never sleeps, gets no expiry warning, and is never handed to a create from the pool", async () => {
    const store = await Store.openSqlite(join(dir, "lifetime.db"));
    const gateway = new FakeGatewayLink();
    const s = await server(store, { pool: 1, gateway });
    await s.controller.idle();
    const { clusterId } = await s.services.ensure();
    // Idle as can be, for a year: sleep is asked for on the record too, as a user's create could.
    await store.clusters.update(clusterId, { idleMinutes: 1 }, { now: s.clock.now() });
    for (let day = 0; day < 365; day++) {
      s.clock.advance(24 * 3600_000);
      await s.controller.idle();
    }
    const r = await store.clusters.get(clusterId);
    assert.deepEqual([r?.phase, r?.desired], ["running", "running"]);
    assert.ok(!s.driver.calls.some((c) => c.includes(clusterId) && !c.startsWith("provision")), s.driver.calls.join());
    assert.equal(gateway.markers.size, 0);
    const events = (await store.outbox.list(clusterId)).map((m) => m.event);
    assert.ok(!events.includes("expiry-warning") && !events.includes("terminated"), events.join());
    // A user's create of the same shape claims the pool's cluster, never the services cluster.
    const mine = await s.clusters.create(unlimitedTenant, {});
    assert.notEqual(mine.id, clusterId);
    assert.equal((await store.clusters.get(clusterId))?.system, "services");
    await s.stop();
    await store.close();
  });

  it("is in no tenant's list or quota, shown to admins marked, and not stopped, extended or deleted through the API", async () => {
    const store = await Store.openSqlite(join(dir, "tenants.db"));
    const s = await server(store);
    const { clusterId } = await s.services.ensure();
    const tenant: TokenIdentity = {
      id: 7,
      name: "ci",
      admin: false,
      limits: { ...NO_LIMITS, maxClusters: 1, privileged: false },
    };
    const mine = await s.clusters.create(tenant, {});
    await assert.rejects(s.clusters.create(tenant, {}), refusedAs("forbidden", /runs 1 \(sleeping ones count\)/));
    assert.deepEqual(
      (await s.clusters.list(tenant)).map((r) => r.id),
      [mine.id],
    );
    await assert.rejects(s.clusters.get(tenant, clusterId), refusedAs("not-found", /not found/));
    const all = await s.clusters.list(admin);
    assert.deepEqual(
      all.map((r) => [r.id, r.system]),
      [
        [clusterId, "services"],
        [mine.id, undefined],
      ],
    );
    await assert.rejects(
      s.clusters.stop(admin, clusterId),
      refusedAs("conflict", /server's services cluster.*stopped/),
    );
    await assert.rejects(s.clusters.extend(admin, clusterId, 10), refusedAs("conflict", /cannot be extended/));
    await assert.rejects(s.clusters.delete(admin, clusterId), refusedAs("conflict", /cannot be deleted/));
    await s.stop();
    await store.close();
  });

  it("holds a place on the host: a full host refuses it (429), and it fills the host's last place", async () => {
    const store = await Store.openSqlite(join(dir, "capacity.db"));
    const full = await server(store, { hostCapacity: 1 });
    const mine = await full.clusters.create(unlimitedTenant, {});
    await assert.rejects(full.services.ensure(), refusedAs("capacity", /host capacity reached: 1 of 1/));
    assert.equal((await store.clusters.all()).length, 1, "nothing half made");
    await full.clusters.delete(unlimitedTenant, mine.id);
    await full.controller.idle();
    await full.services.ensure();
    await assert.rejects(
      full.clusters.create(unlimitedTenant, {}),
      refusedAs("capacity", /host capacity reached: 1 of 1/),
      "the services cluster took the place",
    );
    await full.stop();
    await store.close();
  });

  it("takes a ready pool cluster of its shape when there is one (the pool boots another)", async () => {
    const store = await Store.openSqlite(join(dir, "pool.db"));
    const s = await server(store, { pool: 1 });
    await s.controller.idle();
    const [pooled] = await store.clusters.all();
    assert.equal(pooled.phase, "running");
    const { clusterId } = await s.services.ensure();
    assert.equal(clusterId, pooled.id, "the pool's cluster became the services cluster");
    await s.controller.idle();
    s.clock.advance(POOL_QUIET_AFTER_USE_MS);
    await s.controller.idle();
    const now = await store.clusters.all();
    assert.deepEqual(
      now.map((r) => [r.system ?? "", r.pooled, r.phase]),
      [
        ["services", false, "running"],
        ["", true, "running"],
      ],
    );
    await s.stop();
    await store.close();
  });

  it("after a failure: ensure says why at once until the retry, which makes it afresh; a failed start is started again", async () => {
    const store = await Store.openSqlite(join(dir, "failed.db"));
    const driver = new FlakyDriver();
    driver.failing.provision = "kubelet exited";
    const s = await server(store, { driver });
    await assert.rejects(s.services.ensure(), refusedAs("runtime", /services cluster \w+ failed: kubelet exited/));
    const id = s.services.clusterId()!;
    await assert.rejects(s.services.ensure(), refusedAs("runtime", /failed \(kubelet exited\); it is tried again at/));
    assert.deepEqual(driver.calls, [`provision ${id} (fails)`], "no boot per request while it waits");
    driver.failing = {};
    s.clock.advance(30_000);
    await s.controller.idle();
    await new Promise((r) => setTimeout(r, 20));
    await s.controller.idle();
    // Made afresh (what the failed provision left is cleared first), same record, without a request.
    assert.deepEqual(driver.calls, [`provision ${id} (fails)`, `destroy ${id}`, `provision ${id}`]);
    assert.equal((await store.clusters.get(id))?.phase, "running");
    assert.equal((await s.services.ensure()).clusterId, id);

    // One that ran and then failed (a start after a stop behind its back) is started, its state kept.
    driver.failing.start = "port in use";
    await store.clusters.update(id, { phase: "stopped" }, { now: s.clock.now() });
    s.controller.trigger();
    await s.controller.idle();
    assert.equal((await store.clusters.get(id))?.phase, "failed");
    driver.failing = {};
    s.clock.advance(30_000);
    await new Promise((r) => setTimeout(r, 20));
    await s.controller.idle();
    assert.equal((await store.clusters.get(id))?.phase, "running");
    assert.deepEqual(driver.calls.slice(-2), [`start ${id} (fails)`, `start ${id}`]);
    await s.stop();
    await store.close();
  });

  it("refuses to be privileged: it runs API callers' images", async () => {
    const store = await Store.openSqlite(join(dir, "priv.db"));
    const s = await server(store);
    assert.throws(
      () => new ServicesCluster(store, s.clusters, s.controller, s.driver, s.clock, { ...shape, privileged: true }),
      refusedAs("invalid-input", /may not be privileged/),
    );
    await s.stop();
    await store.close();
  });
});
