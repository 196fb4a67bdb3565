import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { LifetimeController } from "../controller/lifetime-controller.js";
import type { ClusterRecord } from "../core/cluster-record.js";
import { parseWarmPool, profileLabel, type PoolProfile } from "../core/pool-profiles.js";
import { POOL_QUIET_AFTER_USE_MS } from "../core/warm-pool.js";
import { DEFAULT_KUBERNETES_MINOR, KUBERNETES_RELEASES } from "../setup/catalogue.js";
import { Store } from "../store/store.js";
import { FakeClock, FakeDriver, unlimitedTenant } from "../testing/fakes.js";
import { ClusterService } from "./cluster-service.js";

const profiles = (text: string) => {
  const parsed = parseWarmPool(text, { releases: KUBERNETES_RELEASES, defaultMinor: DEFAULT_KUBERNETES_MINOR });
  if (parsed.problem !== undefined) throw new Error(parsed.problem);
  return parsed.profiles;
};

/** Pool members wanted running, as "profile phase" sorted: what the pools hold. */
async function poolContents(store: Store): Promise<string[]> {
  return (await store.clusters.all())
    .filter((r) => r.pooled && r.desired === "running")
    .map((r) => `${profileLabel(r.spec)} ${r.phase}`)
    .sort();
}

describe("warm pools per profile (fake clock, fake driver)", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tempkube-pools-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function setup(
    name: string,
    pools: PoolProfile[],
    hostCapacity = 100,
    store?: Store,
    driver = new FakeDriver(),
  ) {
    store ??= await Store.openSqlite(join(dir, `${name}.db`));
    const clock = new FakeClock();
    const controller = new LifetimeController(store, driver, clock, { options: {} }, { profiles: pools, hostCapacity });
    const told: string[] = [];
    const service = new ClusterService(
      store,
      controller,
      driver,
      clock,
      { hostCapacity, notifications: {} },
      { warmPool: { profiles: pools, onCreate: (profile, hit) => told.push(`${hit ? "hit" : "miss"} ${profile}`) } },
    );
    controller.start();
    await controller.idle();
    return { store, clock, driver, controller, service, told };
  }

  it("keeps several profiles level, booting the exact shape of each", async () => {
    const s = await setup("level", profiles("1.34/1-mid=2,1.33/1-small,1.34/1-small+1w+priv"));
    assert.deepEqual(await poolContents(s.store), [
      "1.33/1-small running",
      "1.34/1-mid running",
      "1.34/1-mid running",
      "1.34/1-small+1w+priv running",
    ]);
    const specs = (await s.store.clusters.all()).map((r) => r.spec);
    assert.ok(
      specs.some((x) => x.kubernetesVersion === "1.34" && x.size === "1-small" && x.workers === 1 && x.privileged),
      "the profile's workers and privileged are the member's",
    );
    assert.equal(s.driver.calls.filter((c) => c.startsWith("provision")).length, 4, "no more than wanted");
    await s.controller.stop();
    await s.store.close();
  });

  it("a create of a pooled shape claims one of that profile; only that profile refills", async () => {
    const s = await setup("claim", profiles("1.34/1-mid,1.33/1-small=2"));
    const provisions = () => s.driver.calls.filter((c) => c.startsWith("provision")).length;
    const before = provisions();
    const mine = await s.service.create(unlimitedTenant, { kubernetesVersion: "v1.33.13", size: "1-small" });
    assert.equal(mine.phase, "running", "claimed, usable at once");
    assert.equal(mine.pooled, false);
    assert.equal(mine.spec.kubernetesVersion, "1.33");
    await s.controller.idle();
    assert.equal(provisions(), before, "no replacement while the claimed cluster's owner starts using it");
    s.clock.advance(POOL_QUIET_AFTER_USE_MS - 1);
    await s.controller.idle();
    assert.equal(provisions(), before, "nor a millisecond before the quiet ends");
    s.clock.advance(1);
    await s.controller.idle();
    assert.equal(provisions(), before + 1, "one replacement");
    assert.equal(profileLabel((await s.store.clusters.all()).at(-1)!.spec), "1.33/1-small", "of the claimed profile");
    assert.deepEqual(await poolContents(s.store), [
      "1.33/1-small running",
      "1.33/1-small running",
      "1.34/1-mid running",
    ]);
    // Exact on everything that shapes a cluster: one worker more is another shape, booted cold.
    const cold = await s.service.create(unlimitedTenant, { kubernetesVersion: "1.33", size: "1-small", workers: 1 });
    assert.equal(cold.phase, "pending");
    const privileged = await s.service.create(unlimitedTenant, { privileged: true });
    assert.equal(privileged.phase, "pending");
    assert.deepEqual(s.told, ["hit 1.33/1-small", "miss none", "miss none"]);
    await s.controller.idle();
    assert.equal((await poolContents(s.store)).length, 3, "cold creates leave the pools as they are");
    await s.controller.stop();
    await s.store.close();
  });

  it("counts a miss against the profile whose pool had none ready", async () => {
    const s = await setup("miss", profiles("1.33/1-small"));
    await s.controller.stop();
    // The pool's member is still booting: a create of its shape cannot wait for it.
    const [member] = await s.store.clusters.all();
    await s.store.clusters.update(member!.id, { phase: "provisioning" }, { now: s.clock.now() });
    const r = await s.service.create(unlimitedTenant, { kubernetesVersion: "1.33", size: "1-small" });
    assert.equal(r.phase, "pending");
    assert.deepEqual(s.told, ["miss 1.33/1-small"]);
    await s.store.close();
  });

  it("counts pools against the host's capacity, leaves the last place free, and gives way to users when full", async () => {
    const s = await setup("full", profiles("1.34/1-mid=2,1.33/1-small"), 5);
    assert.deepEqual(await poolContents(s.store), ["1.33/1-small running", "1.34/1-mid running", "1.34/1-mid running"]);
    const cold = () => s.service.create(unlimitedTenant, { privileged: true });
    await cold();
    await cold(); // takes the last place: 2 users + 3 pooled
    await cold(); // full: a member of the fullest pool gives way (core/warm-pool.ts giveWayOrder)
    await s.controller.idle();
    assert.deepEqual(await poolContents(s.store), ["1.33/1-small running", "1.34/1-mid running"]);
    assert.equal(s.driver.clusters.size, 5, "the retired member was destroyed: 3 users, 2 pooled");
    // A create of a pooled shape on a full host claims: it adds nothing to the host.
    const claimed = await s.service.create(unlimitedTenant, { kubernetesVersion: "1.33", size: "1-small" });
    assert.equal(claimed.phase, "running");
    await s.controller.idle();
    assert.deepEqual(await poolContents(s.store), ["1.34/1-mid running"], "no refill: no place to spare");
    await cold();
    await s.controller.idle();
    assert.deepEqual(await poolContents(s.store), []);
    await assert.rejects(cold(), (e: Error & { type?: string }) => {
      return e.type === "capacity" && /^host capacity reached: 5 of 5 clusters are running/.test(e.message);
    });
    const users = (await s.store.clusters.list()).filter((r) => r.desired === "running");
    assert.equal(users.length, 5, "every place went to users");
    assert.equal(s.driver.clusters.size, 5, "the pool's clusters were destroyed");
    // A user's cluster goes: the pools come back, one at a time, up to the last place.
    await s.service.delete(unlimitedTenant, users[0]!.id);
    await s.service.delete(unlimitedTenant, users[1]!.id);
    s.clock.advance(POOL_QUIET_AFTER_USE_MS);
    await s.controller.idle();
    assert.deepEqual(await poolContents(s.store), ["1.34/1-mid running"]);
    await s.controller.stop();
    await s.store.close();
  });

  it("a start of a stopped cluster on a full host makes a pool cluster give way too", async () => {
    const s = await setup("start", profiles("1.34/1-mid"), 3);
    const r = await s.service.create(unlimitedTenant, { size: "1-small" });
    await s.controller.idle();
    await s.service.stop(unlimitedTenant, r.id);
    await s.service.create(unlimitedTenant, { size: "1-small" });
    await s.controller.idle();
    assert.deepEqual(await poolContents(s.store), ["1.34/1-mid running"], "1 user + 1 pooled: a place left");
    await s.service.create(unlimitedTenant, { size: "1-small" });
    assert.equal((await s.service.start(unlimitedTenant, r.id)).desired, "running");
    await s.controller.idle();
    assert.deepEqual(await poolContents(s.store), []);
    assert.equal((await s.store.clusters.get(r.id))?.phase, "running");
    await s.controller.stop();
    await s.store.close();
  });

  it("after a restart retires the members of a removed profile and keeps the others", async () => {
    const first = await setup("restart", profiles("1.34/1-mid,1.33/1-small=2"));
    await first.controller.stop();
    const kept = (await first.store.clusters.all()).filter((r) => r.spec.kubernetesVersion === "1.34");
    const second = await setup("restart", profiles("1.34/1-mid,1.34/1-large"), 100, first.store);
    await second.controller.idle();
    const all = await first.store.clusters.all();
    const phaseOf = (pred: (r: ClusterRecord) => boolean) =>
      all
        .filter(pred)
        .map((r) => r.phase)
        .sort();
    assert.deepEqual(
      phaseOf((r) => r.spec.kubernetesVersion === "1.33"),
      ["terminated", "terminated"],
    );
    assert.equal((await first.store.clusters.get(kept[0]!.id))?.phase, "running", "a kept profile's member stays");
    assert.deepEqual(await poolContents(first.store), ["1.34/1-large running", "1.34/1-mid running"]);
    await second.controller.stop();
    await first.store.close();
  });

  it("a profile whose boots fail waits, alone: the other pools fill", async () => {
    class Broken133 extends FakeDriver {
      override async provision(spec: Parameters<FakeDriver["provision"]>[0]) {
        if (spec.kubernetesVersion === "1.33") {
          this.calls.push(`provision ${spec.id} failed`);
          throw new Error("kube-apiserver 1.33 did not start");
        }
        return super.provision(spec);
      }
    }
    const s = await setup("broken", profiles("1.33/1-small,1.34/1-mid=2"), 100, undefined, new Broken133());
    const failures = () => s.driver.calls.filter((c) => c.endsWith("failed")).length;
    assert.deepEqual(await poolContents(s.store), ["1.34/1-mid running", "1.34/1-mid running"]);
    assert.equal(failures(), 1, "tried once, then waits");
    s.clock.advance(30_000);
    await s.controller.idle();
    assert.equal(failures(), 2, "tried again after 30 s");
    s.clock.advance(30_000);
    await s.controller.idle();
    assert.equal(failures(), 2, "then waits twice as long");
    s.clock.advance(30_000);
    await s.controller.idle();
    assert.equal(failures(), 3);
    await s.controller.stop();
    await s.store.close();
  });
});
