import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ClusterRecord } from "./cluster-record.js";
import {
  DEFAULT_FREEZE_AFTER_MS,
  frozenToSleep,
  endsWake,
  isFreezable,
  isIdle,
  lastActiveAt,
  mayFallAsleep,
  mayFreeze,
  sleepFieldsFor,
  type ConnectionActivity,
} from "./idle.js";

const NOW = Date.UTC(2026, 0, 1, 12);
const MINUTE = 60_000;

function record(changes: Partial<ClusterRecord> = {}): ClusterRecord {
  return {
    id: "abc123",
    owner: "1",
    name: null,
    spec: { id: "abc123", kubernetesVersion: "1.34", privileged: false, size: "1-small", workers: 0 },
    keep: false,
    notificationEmail: null,
    desired: "running",
    phase: "running",
    ttlMinutes: 600,
    expiresAt: NOW + 600 * MINUTE,
    createdAt: NOW - 60 * MINUTE,
    updatedAt: NOW - 60 * MINUTE,
    lastError: null,
    timings: {},
    generation: 0,
    labels: {},
    pooled: false,
    idleMinutes: 5,
    runningSince: NOW - 60 * MINUTE,
    sleptAt: null,
    frozenAt: null,
    ...changes,
  };
}

const activity = (clusters: ConnectionActivity["clusters"], since = NOW - 120 * MINUTE): ConnectionActivity => ({
  since,
  clusters,
});

describe("idle rule", () => {
  it("counts idle time from the last connection, or from the gateway's start or the cluster's when later", () => {
    const r = record();
    assert.equal(lastActiveAt(r, activity({ abc123: { lastActiveAt: NOW - MINUTE, open: 0 } })), NOW - MINUTE);
    assert.equal(lastActiveAt(r, activity({}, NOW - 2 * MINUTE)), NOW - 2 * MINUTE, "the gateway knows nothing older");
    assert.equal(
      lastActiveAt(record({ runningSince: NOW - 3 * MINUTE }), activity({})),
      NOW - 3 * MINUTE,
      "a cluster that just started (or woke) gets its whole idle time",
    );
  });

  it("puts a cluster to sleep once idleMinutes have passed with no connection, to the millisecond", () => {
    const a = activity({ abc123: { lastActiveAt: NOW - 5 * MINUTE, open: 0 } });
    assert.equal(isIdle(record(), a, NOW - 1), false);
    assert.equal(isIdle(record(), a, NOW), true);
  });

  it("keeps a cluster with an open connection awake however old it is", () => {
    assert.equal(isIdle(record(), activity({ abc123: { lastActiveAt: NOW - 90 * MINUTE, open: 1 } }), NOW), false);
  });

  it("never sleeps without a gateway's activity, with idleMinutes 0, in the pool, or unless running and wanted so", () => {
    assert.equal(isIdle(record(), undefined, NOW), false, "no activity source: no information, no sleep");
    const quiet = activity({});
    assert.equal(isIdle(record(), quiet, NOW), true);
    assert.equal(isIdle(record({ idleMinutes: 0 }), quiet, NOW), false);
    assert.equal(isIdle(record({ pooled: true }), quiet, NOW), false);
    assert.equal(isIdle(record({ desired: "stopped" }), quiet, NOW), false);
    for (const phase of ["starting", "stopping", "sleeping", "provisioning", "failed"] as const)
      assert.equal(mayFallAsleep(record({ phase })), false, phase);
  });
});

describe("sleep fields", () => {
  it("start the idle count when running, mark the sleep, keep it through the wake, clear it otherwise", () => {
    assert.deepEqual(sleepFieldsFor("running", NOW), { runningSince: NOW, sleptAt: null, frozenAt: null });
    assert.deepEqual(sleepFieldsFor("sleeping", NOW), { sleptAt: NOW, frozenAt: null });
    assert.deepEqual(sleepFieldsFor("starting", NOW), { frozenAt: null });
    for (const phase of ["stopped", "stopping", "failed", "terminating", "terminated"] as const)
      assert.deepEqual(sleepFieldsFor(phase, NOW), { sleptAt: null, frozenAt: null }, phase);
  });

  it("tell a wake (out of sleep to running) from any other start", () => {
    const waking = record({ phase: "starting", sleptAt: NOW - MINUTE });
    assert.equal(endsWake({ ...waking, phase: "running", sleptAt: null }, waking), true);
    const starting = record({ phase: "starting", sleptAt: null });
    assert.equal(endsWake({ ...starting, phase: "running" }, starting), false);
  });
});

describe("freezing when idle", () => {
  const after = DEFAULT_FREEZE_AFTER_MS;
  it("freezes a user's running cluster once no connection came for the freeze time, never with one open", () => {
    const seen = (lastActiveAt: number, open = 0) => activity({ abc123: { lastActiveAt, open } });
    assert.equal(isFreezable(record(), seen(NOW - after), NOW, after), true);
    assert.equal(isFreezable(record(), seen(NOW - after + 1), NOW, after), false, "a connection within the time");
    assert.equal(isFreezable(record(), seen(NOW - 90 * MINUTE, 1), NOW, after), false, "a watch held open");
    assert.equal(isFreezable(record(), activity({}), NOW, after), true, "never connected to: idle since it ran");
  });

  it("counts from the last start (a woken or started cluster gets its full time) and the gateway's own start", () => {
    assert.equal(isFreezable(record({ runningSince: NOW - 1000 }), activity({}), NOW, after), false);
    assert.equal(isFreezable(record(), { since: NOW - 1000, clusters: {} }, NOW, after), false);
  });

  it("never freezes without the gateway's activity, with --freeze-after 0, pools', the server's, frozen or not running ones", () => {
    const quiet = activity({});
    assert.equal(isFreezable(record(), undefined, NOW, after), false);
    assert.equal(isFreezable(record(), quiet, NOW, 0), false);
    assert.equal(isFreezable(record({ pooled: true }), quiet, NOW, after), false);
    assert.equal(isFreezable(record({ system: "services" }), quiet, NOW, after), false);
    assert.equal(isFreezable(record({ frozenAt: NOW - after }), quiet, NOW, after), false);
    assert.equal(isFreezable(record({ desired: "stopped" }), quiet, NOW, after), false);
    for (const phase of ["starting", "stopping", "sleeping", "provisioning", "failed"] as const)
      assert.equal(mayFreeze(record({ phase })), false, phase);
  });

  it("freezes clusters that never sleep too (idleMinutes 0): a freeze keeps them running", () => {
    assert.equal(isFreezable(record({ idleMinutes: 0 }), activity({}), NOW, after), true);
  });
});

describe("frozen clusters giving way on a full host", () => {
  it("puts to sleep as many frozen clusters as the host is over, counting the one to come, and no more than are frozen", () => {
    assert.equal(frozenToSleep({ total: 4, frozen: 2 }, 5), 0, "room left");
    assert.equal(frozenToSleep({ total: 5, frozen: 2 }, 5), 1, "full: one for the newcomer");
    assert.equal(frozenToSleep({ total: 7, frozen: 5 }, 5), 3, "over (a capacity lowered at restart)");
    assert.equal(frozenToSleep({ total: 7, frozen: 1 }, 5), 1, "only what is frozen");
    assert.equal(frozenToSleep({ total: 5 }, 5), 0, "none frozen");
  });
});
