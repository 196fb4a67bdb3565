import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { LifetimeController } from "../controller/lifetime-controller.js";
import type { TokenIdentity } from "../core/quota.js";
import { DEFAULT_KUBERNETES_MINOR } from "../setup/catalogue.js";
import { defaultPoolProfiles } from "../core/pool-profiles.js";
import { POOL_QUIET_AFTER_USE_MS } from "../core/warm-pool.js";
import { Store } from "../store/store.js";
import { FakeClock, FakeDriver, fakeKubeconfig, unlimitedTenant } from "../testing/fakes.js";
import { ClusterService } from "./cluster-service.js";

const refusedAs = (type: string, text: RegExp) => (e: Error & { type?: string }) =>
  e.type === type && text.test(e.message);

describe("cluster service admission and warm pool (fake clock, fake driver)", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tempkube-svc-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function setup(name: string, hostCapacity = 100, poolSize = 0, defaultIdleMinutes?: number) {
    const store = await Store.openSqlite(join(dir, `${name}.db`));
    const clock = new FakeClock();
    const driver = new FakeDriver();
    const controller = new LifetimeController(
      store,
      driver,
      clock,
      { options: {} },
      { profiles: defaultPoolProfiles(poolSize, DEFAULT_KUBERNETES_MINOR), hostCapacity },
    );
    controller.start();
    const service = new ClusterService(store, controller, driver, clock, {
      hostCapacity,
      notifications: {},
      defaultIdleMinutes,
    });
    return {
      store,
      clock,
      driver,
      controller,
      service,
      async close() {
        await controller.stop();
        await store.close();
      },
    };
  }

  it("refuses what the token does not allow with 403-type errors naming the limit, and makes nothing", async () => {
    const s = await setup("policy");
    const limited: TokenIdentity = {
      id: 7,
      name: "ci-small",
      admin: false,
      limits: {
        maxClusters: 1,
        maxTtlMinutes: 30,
        sizes: ["1-small"],
        privileged: false,
        maxServices: null,
        maxServiceMinutes: null,
      },
    };
    await assert.rejects(
      s.service.create(limited, { size: "1-small", privileged: true }),
      refusedAs("forbidden", /may not create privileged clusters/),
    );
    await assert.rejects(
      s.service.create(limited, { size: "1-mid" }),
      refusedAs("forbidden", /may not create size "1-mid".*allowed: 1-small/),
    );
    await assert.rejects(
      s.service.create(limited, { size: "1-small", ttlMinutes: 31 }),
      refusedAs("forbidden", /at most 30 minutes \(ttlMinutes 31\)/),
    );
    assert.equal((await s.store.clusters.all()).length, 0, "nothing made");
    const first = await s.service.create(limited, { size: "1-small", ttlMinutes: 30 });
    await assert.rejects(
      s.service.create(limited, { size: "1-small", ttlMinutes: 30 }),
      refusedAs("forbidden", /quota: token "ci-small" may run 1 cluster\(s\) at once and runs 1/),
    );
    await assert.rejects(s.service.extend(limited, first.id, 60), refusedAs("forbidden", /at most 30 minutes/));
    // A stopped cluster frees its place; starting it again takes the place back.
    await s.controller.idle();
    await s.service.stop(limited, first.id);
    await s.controller.idle();
    const second = await s.service.create(limited, { size: "1-small", ttlMinutes: 5 });
    await assert.rejects(s.service.start(limited, first.id), refusedAs("forbidden", /quota/));
    assert.equal((await s.store.clusters.get(first.id))?.desired, "stopped", "a refused start changes nothing");
    await s.service.delete(limited, second.id);
    await s.controller.idle();
    await s.service.start(limited, first.id);
    await s.close();
  });

  it("refuses beyond the host's capacity as a capacity error, counting every tenant, nothing half-made", async () => {
    const s = await setup("capacity", 2);
    const other: TokenIdentity = { ...unlimitedTenant, id: 2, name: "other" };
    await s.service.create(unlimitedTenant, {});
    await s.service.create(other, {});
    await assert.rejects(
      s.service.create(unlimitedTenant, {}),
      refusedAs("capacity", /host capacity reached: 2 of 2 clusters/),
    );
    assert.equal((await s.store.clusters.all()).length, 2);
    await s.controller.idle();
    assert.equal(s.driver.clusters.size, 2);
    await s.close();
  });

  it("concurrent creates cannot both take the last place", async () => {
    const s = await setup("race", 1);
    const results = await Promise.allSettled([
      s.service.create(unlimitedTenant, {}),
      s.service.create(unlimitedTenant, {}),
    ]);
    assert.deepEqual(results.map((r) => r.status).sort(), ["fulfilled", "rejected"]);
    await s.close();
  });

  it("keeps a warm pool, hands a pooled cluster to a create of its shape at once, and boots a replacement", async () => {
    const s = await setup("pool", 10, 1);
    await s.controller.idle();
    const [pooled] = await s.store.clusters.all();
    assert.equal(pooled.pooled, true);
    assert.equal(pooled.phase, "running");
    assert.deepEqual(await s.service.list(unlimitedTenant), [], "the pool is nobody's");
    await assert.rejects(s.service.get(unlimitedTenant, pooled.id), refusedAs("not-found", /not found/));

    const mine = await s.service.create(unlimitedTenant, { ttlMinutes: 20, name: "quick", labels: { team: "a" } });
    assert.equal(mine.id, pooled.id);
    assert.equal(mine.phase, "running", "usable at once");
    assert.equal(mine.expiresAt, s.clock.now() + 20 * 60_000, "the lifetime starts at the claim");
    assert.equal(await s.service.kubeconfig(unlimitedTenant, mine.id), fakeKubeconfig(mine.id));
    await s.controller.idle();
    assert.equal(
      (await s.store.clusters.all()).filter((r) => r.pooled).length,
      0,
      "no replacement while the claimed cluster's owner starts using it",
    );
    s.clock.advance(POOL_QUIET_AFTER_USE_MS);
    await s.controller.idle();
    const all = await s.store.clusters.all();
    assert.equal(all.filter((r) => r.pooled && r.phase === "running").length, 1, "a replacement was booted");
    assert.deepEqual(
      (await s.service.list(unlimitedTenant, { team: "a" })).map((r) => r.id),
      [mine.id],
    );
    assert.deepEqual(await s.service.list(unlimitedTenant, { team: "b" }), []);

    // Another shape is not served from the pool.
    const privileged = await s.service.create(unlimitedTenant, { privileged: true });
    assert.equal(privileged.phase, "pending");
    // Pooled clusters never expire; the claimed one does.
    s.clock.advance(20 * 60_000);
    await s.controller.idle();
    assert.equal((await s.store.clusters.get(mine.id))?.phase, "terminated");
    assert.equal((await s.store.clusters.all()).filter((r) => r.pooled && r.phase === "running").length, 1);
    await s.close();
  });

  it("takes idleMinutes from the request or the server's default, and refuses a bad one naming the field", async () => {
    const s = await setup("idle", 100, 0, 30);
    assert.equal((await s.service.create(unlimitedTenant, {})).idleMinutes, 30, "the server's default");
    assert.equal((await s.service.create(unlimitedTenant, { idleMinutes: 0 })).idleMinutes, 0, "0: never");
    assert.equal((await s.service.create(unlimitedTenant, { idleMinutes: 5 })).idleMinutes, 5);
    for (const bad of [-1, 1.5, 24 * 60 + 1])
      await assert.rejects(
        s.service.create(unlimitedTenant, { idleMinutes: bad }),
        refusedAs("invalid-input", /^idleMinutes must be a whole number of minutes from 0 \(never sleep\) to 1440/),
      );
    await s.close();
  });

  it("counts a sleeping cluster against its token's quota, not the host's capacity; start wakes it without admission", async () => {
    const s = await setup("asleep", 1);
    const limited: TokenIdentity = {
      ...unlimitedTenant,
      id: 8,
      name: "one",
      limits: { ...unlimitedTenant.limits, maxClusters: 1 },
    };
    const r = await s.service.create(limited, { idleMinutes: 5 });
    await s.controller.idle();
    await s.store.clusters.update(r.id, { phase: "sleeping", sleptAt: s.clock.now() }, { now: s.clock.now() });
    await assert.rejects(s.service.create(limited, {}), refusedAs("forbidden", /quota: .* \(sleeping ones count\)/));
    const other = await s.service.create(unlimitedTenant, {});
    await s.controller.idle();
    assert.equal((await s.store.clusters.get(other.id))?.phase, "running", "the sleeper's place on the host was free");
    const waking = await s.service.start(limited, r.id);
    assert.equal(waking.phase, "starting", "a wake is not refused for a full host: it is tried");
    assert.equal((await s.service.waitSettled(r.id))?.phase, "running");
    await assert.rejects(s.service.start(limited, r.id), refusedAs("conflict", /already running/));
    await s.close();
  });

  it("hands a pool cluster over with the request's idleMinutes, its idle time counted from the claim", async () => {
    const s = await setup("pool-idle", 10, 1);
    await s.controller.idle();
    s.clock.advance(60 * 60_000);
    const mine = await s.service.create(unlimitedTenant, { idleMinutes: 7 });
    assert.equal(mine.pooled, false);
    assert.equal(mine.idleMinutes, 7);
    assert.equal(mine.runningSince, s.clock.now());
    await s.close();
  });

  it("retires surplus pool members when the pool shrinks", async () => {
    const s = await setup("shrink", 10, 2);
    await s.controller.idle();
    await s.controller.idle();
    assert.equal((await s.store.clusters.all()).filter((r) => r.phase === "running").length, 2);
    await s.controller.stop();
    const smaller = new LifetimeController(s.store, s.driver, s.clock, { options: {} }, { profiles: [] });
    smaller.start();
    await smaller.idle();
    await smaller.idle();
    assert.deepEqual(
      (await s.store.clusters.all()).map((r) => r.phase),
      ["terminated", "terminated"],
    );
    assert.equal(s.driver.clusters.size, 0);
    await smaller.stop();
    await s.store.close();
  });
});
