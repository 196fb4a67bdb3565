import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ClusterRecord } from "./cluster-record.js";
import { parseWarmPool, type PoolProfile } from "./pool-profiles.js";
import {
  claimPooled,
  giveWayOrder,
  hostLoad,
  newPooledRecord,
  poolBootRefusal,
  poolPlan,
  POOL_QUIET_AFTER_USE_MS,
  poolQuietUntil,
  poolServes,
  pooledShape,
  poolsPlan,
  profileOf,
  roomToFree,
} from "./warm-pool.js";

const NOW = Date.UTC(2026, 0, 1);
const shape = pooledShape("1.34");
const member = (id: string, changes: Partial<ClusterRecord> = {}): ClusterRecord => ({
  ...newPooledRecord(shape, NOW, id),
  ...changes,
});

describe("warm pool", () => {
  it("boots nothing for a while after a user's cluster became theirs, counted from the latest", () => {
    const users = [
      member("u1", { pooled: false, runningSince: NOW - 60_000 }),
      member("u2", { pooled: false, runningSince: NOW - 500 }),
      member("u3", { pooled: false, runningSince: null, phase: "stopped" }),
    ];
    assert.equal(poolQuietUntil(users), NOW - 500 + POOL_QUIET_AFTER_USE_MS);
    // A pool member's own boot is nobody's use; nor is a user's cluster that is not running.
    assert.equal(poolQuietUntil([member("p1", { runningSince: NOW }), users[2]!]), 0);
  });

  it("pools the default shape: default size, not privileged, no workers", () => {
    assert.deepEqual(shape, { kubernetesVersion: "1.34", privileged: false, size: "1-mid", workers: 0 });
  });

  it("serves only a request of the same shape, versions compared by the given rule", () => {
    const pooled = { id: "pool1", ...shape };
    const minor = (v: string) => v.replace(/^v/, "").split(".").slice(0, 2).join(".");
    const sameMinor = (a: string, b: string) => minor(a) === minor(b);
    assert.equal(poolServes(pooled, { ...shape, kubernetesVersion: "v1.34.4" }, sameMinor), true);
    assert.equal(poolServes(pooled, { ...shape, kubernetesVersion: "1.33" }, sameMinor), false);
    assert.equal(poolServes(pooled, { ...shape, privileged: true }, sameMinor), false);
    assert.equal(poolServes(pooled, { ...shape, size: "1-small" }, sameMinor), false);
    assert.equal(poolServes(pooled, { ...shape, workers: 1 }, sameMinor), false);
  });

  it("makes members with no owner and no lifetime, kept out of users' lists", () => {
    const r = newPooledRecord(shape, NOW, "pool1");
    assert.equal(r.pooled, true);
    assert.equal(r.owner, "");
    assert.equal(r.phase, "pending");
    assert.equal(r.desired, "running");
    assert.deepEqual(r.spec, { id: "pool1", ...shape });
  });

  it("boots up to the size and retires failed members and the oldest surplus", () => {
    assert.deepEqual(poolPlan([], 2), { boot: 2, retire: [] });
    const failed = member("bad1", { phase: "failed" });
    const a = member("aaa1", { phase: "running" });
    const b = member("bbb1", { phase: "provisioning" });
    const claimed = member("usr1", { pooled: false });
    const leaving = member("old1", { desired: "terminated" });
    assert.deepEqual(poolPlan([failed, a, b, claimed, leaving], 2), { boot: 0, retire: [failed] });
    assert.deepEqual(poolPlan([a, b], 1), { boot: 0, retire: [a] });
    assert.deepEqual(poolPlan([failed, a], 2), { boot: 1, retire: [failed] });
  });

  it("hands a claimed member to its user with their lifetime counted from the claim", () => {
    const later = NOW + 10 * 60_000;
    const claim = {
      owner: "7",
      name: "mine",
      keep: true,
      notificationEmail: "u@example.com",
      ttlMinutes: 30,
      labels: { pr: "42" },
      idleMinutes: 15,
    };
    const r = claimPooled(member("pool1", { phase: "running" }), claim, later);
    assert.equal(r.pooled, false);
    assert.equal(r.phase, "running");
    assert.equal(r.createdAt, later);
    assert.equal(r.expiresAt, later + 30 * 60_000);
    assert.equal(r.idleMinutes, 15);
    assert.equal(r.runningSince, later, "its idle time counts from the claim, not from its boot");
    assert.deepEqual(
      { owner: r.owner, name: r.name, keep: r.keep, notificationEmail: r.notificationEmail, labels: r.labels },
      { owner: "7", name: "mine", keep: true, notificationEmail: "u@example.com", labels: { pr: "42" } },
    );
  });

  describe("several profiles", () => {
    const versions = {
      releases: [
        { minor: "1.34", version: "v1.34.4" },
        { minor: "1.33", version: "v1.33.13" },
      ],
      defaultMinor: "1.34",
    };
    const minor = (v: string) => v.replace(/^v/, "").split(".").slice(0, 2).join(".");
    const sameMinor = (a: string, b: string) => minor(a) === minor(b);
    const parsed = parseWarmPool("1.34/1-mid=2,1.33/1-small=1,1.34/1-mid+1w+priv=1", versions);
    assert.ok(parsed.problem === undefined);
    const profiles = parsed.profiles;
    const [mid, small, priv] = profiles as [PoolProfile, PoolProfile, PoolProfile];
    let n = 0;
    const of = (p: PoolProfile, changes: Partial<ClusterRecord> = {}): ClusterRecord => ({
      ...newPooledRecord(p.shape, NOW + n, `m${++n}aa`),
      phase: "running",
      ...changes,
    });
    const user = (changes: Partial<ClusterRecord> = {}): ClusterRecord => ({
      ...of(mid),
      pooled: false,
      owner: "1",
      ...changes,
    });
    const plan = (live: ClusterRecord[], capacity = 100, mayBoot?: (p: PoolProfile) => boolean) =>
      poolsPlan(live, profiles, sameMinor, capacity, mayBoot);
    const ids = (p: ReturnType<typeof plan>) => ({
      retire: p.retire.map((r) => `${r.record.id} ${r.why}`),
      boot: p.boot?.label,
    });

    it("finds a member's profile by an exact match on version, size, workers and privileged", () => {
      assert.equal(profileOf({ ...mid.shape, kubernetesVersion: "v1.34.4" }, profiles, sameMinor), mid);
      assert.equal(profileOf(priv.shape, profiles, sameMinor), priv);
      assert.equal(profileOf({ ...priv.shape, privileged: false }, profiles, sameMinor), undefined);
      assert.equal(profileOf({ ...priv.shape, workers: 2 }, profiles, sameMinor), undefined);
      assert.equal(profileOf({ ...small.shape, size: "1-mid" }, profiles, sameMinor), undefined);
      assert.equal(profileOf({ ...small.shape, kubernetesVersion: "1.34" }, profiles, sameMinor), undefined);
    });

    it("boots one member at a time, each profile's first before any profile's second", () => {
      assert.deepEqual(ids(plan([])), { retire: [], boot: "1.34/1-mid" });
      const a = of(mid);
      assert.deepEqual(ids(plan([a])), { retire: [], boot: "1.33/1-small" });
      assert.deepEqual(ids(plan([a, of(small)])), { retire: [], boot: "1.34/1-mid+1w+priv" });
      assert.deepEqual(ids(plan([a, of(small), of(priv)])), { retire: [], boot: "1.34/1-mid" });
      assert.deepEqual(ids(plan([a, of(small), of(priv), of(mid)])), { retire: [], boot: undefined }, "level");
      assert.equal(plan([of(mid, { phase: "provisioning" })]).boot, undefined, "one boot at a time");
      assert.equal(plan([of(mid, { phase: "pending" })]).boot, undefined);
      assert.equal(plan([], 100, (p) => p !== mid).boot, small, "a profile waiting after failures is passed over");
    });

    it("retires members of a removed profile, failed ones and the oldest surplus, by profile", () => {
      const gone = of(small, { spec: { id: "gone1", ...small.shape, workers: 3 } });
      const failed = of(small, { phase: "failed" });
      const [m1, m2, m3] = [of(mid), of(mid), of(mid)];
      assert.deepEqual(ids(plan([gone, failed, m1, m2, m3, of(priv)])), {
        retire: [`${gone.id} profile removed`, `${m1.id} surplus`, `${failed.id} failed`],
        boot: "1.33/1-small",
      });
    });

    it("counts against the host's capacity: never boots into the last place, gives way when users came past it", () => {
      const pool = [of(mid), of(small)];
      assert.equal(plan([...pool, user()], 5).boot, priv, "two places left: one boots");
      assert.equal(plan([...pool, user(), user()], 5).boot, undefined, "one place left: it stays free");
      assert.deepEqual(plan([...pool, user(), user(), user()], 5).retire, [], "full, not over");
      // Sleeping users hold no place; a wake puts them back without admission, then the pool gives way.
      assert.equal(plan([...pool, user(), user(), user({ phase: "sleeping" })], 5).boot, undefined);
      const over = plan([...pool, user(), user(), user(), user()], 5);
      assert.deepEqual(
        over.retire.map((r) => r.why),
        ["host full"],
      );
      assert.equal(plan([...pool, user({ desired: "stopped", phase: "stopped" })], 3).boot, undefined);
    });

    it("counts what holds room as the store does: users' clusters wanted running and awake (and of them the frozen), pool members", () => {
      assert.deepEqual(
        hostLoad([
          of(mid),
          of(mid, { phase: "failed" }),
          of(mid, { desired: "terminated" }),
          user(),
          user({ frozenAt: 1_000 }),
          user({ phase: "sleeping" }),
          user({ desired: "stopped" }),
        ]),
        { users: 2, pooled: 2, frozen: 1 },
      );
    });

    it("says how many pool members must give way to a user's create, and refuses a boot into the last place", () => {
      assert.equal(roomToFree({ owner: 0, total: 3, pooled: 1 }, 5), 0);
      assert.equal(roomToFree({ owner: 0, total: 3, pooled: 2 }, 5), 1);
      assert.equal(roomToFree({ owner: 0, total: 4, pooled: 3 }, 5), 3, "a host over capacity frees what it takes");
      assert.equal(roomToFree({ owner: 0, total: 5, pooled: 0 }, 5), 0, "no pool: the users' count refuses");
      assert.equal(poolBootRefusal({ owner: 0, total: 2, pooled: 1 }, 5), undefined);
      assert.equal(poolBootRefusal({ owner: 0, total: 2, pooled: 2 }, 5)?.type, "capacity");
      assert.equal(poolBootRefusal({ owner: 0, total: 0, pooled: 0 }, 1)?.type, "capacity", "capacity 1: no pool");
    });

    it("gives way with what costs least to lose first, then from the fullest pool, newest first", () => {
      const oldMid = of(mid);
      const newMid = of(mid);
      const smallOne = of(small);
      const failed = of(priv, { phase: "failed" });
      const pending = of(priv, { phase: "pending" });
      const booting = of(small, { phase: "provisioning" });
      assert.deepEqual(
        giveWayOrder([oldMid, smallOne, booting, newMid, pending, failed], profiles, sameMinor).map((r) => r.id),
        [failed.id, pending.id, booting.id, newMid.id, oldMid.id, smallOne.id],
      );
    });
  });
});
