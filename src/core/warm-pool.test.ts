import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ClusterRecord } from "./cluster-record.js";
import { claimPooled, newPooledRecord, poolPlan, poolServes, pooledShape } from "./warm-pool.js";

const NOW = Date.UTC(2026, 0, 1);
const shape = pooledShape("1.34");
const member = (id: string, changes: Partial<ClusterRecord> = {}): ClusterRecord => ({
  ...newPooledRecord(shape, NOW, id),
  ...changes,
});

describe("warm pool", () => {
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
});
