import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  conflictFor,
  expiryDue,
  expiryOutcome,
  isSettled,
  nextExpiry,
  nextWakeUp,
  PHASES,
  warningAt,
  type ClusterRecord,
} from "./cluster-record.js";

const NOW = Date.UTC(2026, 0, 1);
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
    ttlMinutes: 30,
    expiresAt: NOW + 30 * MINUTE,
    createdAt: NOW,
    updatedAt: NOW,
    lastError: null,
    timings: {},
    generation: 0,
    labels: {},
    pooled: false,
    idleMinutes: 0,
    runningSince: null,
    sleptAt: null,
    frozenAt: null,
    ...changes,
  };
}

describe("conflictFor", () => {
  it("refuses every operation on a terminated cluster, or one on its way there", () => {
    for (const op of ["stop", "start", "extend", "delete"] as const) {
      assert.equal(
        conflictFor(op, record({ phase: "terminated", desired: "terminated" })),
        "cluster abc123 is terminated",
      );
      assert.equal(
        conflictFor(op, record({ phase: "running", desired: "terminated" })),
        "cluster abc123 is terminated",
      );
    }
  });

  it("refuses a stop of what is stopped or stopping, and a start of what is running or starting, naming which", () => {
    assert.equal(
      conflictFor("stop", record({ desired: "stopped", phase: "stopped" })),
      "cluster abc123 is already stopped",
    );
    assert.equal(
      conflictFor("stop", record({ desired: "stopped", phase: "stopping" })),
      "cluster abc123 is already stopping",
    );
    assert.equal(
      conflictFor("start", record({ desired: "running", phase: "running" })),
      "cluster abc123 is already running",
    );
    assert.equal(
      conflictFor("start", record({ desired: "running", phase: "starting" })),
      "cluster abc123 is already starting",
    );
  });

  it("allows the opposite operation, and extend or delete of a live cluster", () => {
    assert.equal(conflictFor("stop", record()), undefined);
    assert.equal(conflictFor("start", record({ desired: "stopped", phase: "stopped" })), undefined);
    assert.equal(conflictFor("extend", record({ desired: "stopped", phase: "stopped" })), undefined);
    assert.equal(conflictFor("delete", record({ phase: "failed" })), undefined);
  });

  it("lets every operation through on a sleeping cluster: start wakes it, stop, extend and delete as usual", () => {
    for (const op of ["stop", "start", "extend", "delete"] as const)
      assert.equal(conflictFor(op, record({ desired: "running", phase: "sleeping" })), undefined, op);
    assert.equal(
      conflictFor("start", record({ desired: "running", phase: "starting", sleptAt: NOW })),
      "cluster abc123 is already starting",
      "a wake under way",
    );
    assert.equal(conflictFor("start", record({ desired: "running", phase: "failed" })), undefined, "tried again");
  });
});

describe("expiry", () => {
  it("stops a kept cluster and terminates any other", () => {
    assert.equal(expiryOutcome(record({ keep: true })), "stopped");
    assert.equal(expiryOutcome(record({ keep: false })), "terminated");
  });

  it("is due from expiresAt on, to the millisecond, while it still has something to do", () => {
    const r = record();
    assert.equal(expiryDue(r, r.expiresAt - 1), false);
    assert.equal(expiryDue(r, r.expiresAt), true);
    assert.equal(expiryDue({ ...r, desired: "terminated" }, r.expiresAt), false, "already terminating");
    const kept = record({ keep: true });
    assert.equal(expiryDue(kept, kept.expiresAt), true);
    assert.equal(
      expiryDue({ ...kept, desired: "stopped" }, kept.expiresAt),
      false,
      "an expired kept cluster stays stopped",
    );
  });

  it("never applies to a warm-pool cluster, which has no lifetime until claimed", () => {
    assert.equal(expiryDue(record({ pooled: true, expiresAt: NOW }), NOW + MINUTE), false);
    assert.equal(nextExpiry([record({ pooled: true, expiresAt: NOW + MINUTE })], NOW), undefined);
  });

  it("wakes at the earliest expiry still to act on, or now when one is overdue", () => {
    const soon = record({ id: "soon1", expiresAt: NOW + 5 * MINUTE });
    const later = record({ id: "later1", expiresAt: NOW + 9 * MINUTE });
    const keptStopped = record({ id: "kept1", keep: true, desired: "stopped", expiresAt: NOW + MINUTE });
    const terminating = record({ id: "gone1", desired: "terminated", expiresAt: NOW + MINUTE });
    assert.equal(nextExpiry([later, soon, keptStopped, terminating], NOW), NOW + 5 * MINUTE);
    assert.equal(nextExpiry([later, record({ expiresAt: NOW - 1 })], NOW), NOW);
    assert.equal(nextExpiry([], NOW), undefined);
  });

  it("keeps running while a cluster sleeps: stopped (keep) or terminated at expiry like any other", () => {
    const asleep = record({ phase: "sleeping", sleptAt: NOW });
    assert.equal(nextExpiry([asleep], NOW), asleep.expiresAt);
    assert.equal(expiryDue(asleep, asleep.expiresAt), true);
    assert.equal(expiryOutcome(asleep), "terminated");
    assert.equal(expiryDue({ ...asleep, keep: true }, asleep.expiresAt), true);
    assert.equal(expiryOutcome({ ...asleep, keep: true }), "stopped");
  });
});

describe("expiry warning", () => {
  it("is due warningMs before expiry, for running users' clusters only, and never when warnings are off", () => {
    const r = record();
    assert.equal(warningAt(r, 5 * MINUTE), r.expiresAt - 5 * MINUTE);
    assert.equal(warningAt(r, 0), undefined);
    assert.equal(warningAt({ ...r, desired: "stopped" }, 5 * MINUTE), undefined);
    assert.equal(warningAt({ ...r, pooled: true }, 5 * MINUTE), undefined);
  });

  it("sets the next wake-up to a warning when it comes before every expiry, and ignores warnings already past", () => {
    const r = record({ expiresAt: NOW + 30 * MINUTE });
    assert.equal(nextWakeUp([r], NOW, 5 * MINUTE), NOW + 25 * MINUTE);
    assert.equal(
      nextWakeUp([r], NOW + 26 * MINUTE, 5 * MINUTE),
      NOW + 30 * MINUTE,
      "the warning is past: the expiry is next",
    );
    assert.equal(nextWakeUp([], NOW, 5 * MINUTE), undefined);
  });
});

describe("isSettled", () => {
  it("is settled when the phase has reached what is desired, or failed", () => {
    assert.equal(isSettled(record({ desired: "running", phase: "running" })), true);
    assert.equal(isSettled(record({ desired: "stopped", phase: "stopped" })), true);
    assert.equal(isSettled(record({ desired: "terminated", phase: "terminated" })), true);
    assert.equal(isSettled(record({ desired: "running", phase: "failed" })), true);
    assert.equal(isSettled(record({ desired: "running", phase: "sleeping" })), true, "asleep is where it rests");
    for (const phase of PHASES.filter((p) => p !== "running" && p !== "failed" && p !== "sleeping")) {
      assert.equal(isSettled(record({ desired: "running", phase })), false, phase);
    }
  });
});

describe("the server's own clusters (system)", () => {
  const services = record({ owner: "", system: "services", expiresAt: NOW - 1, idleMinutes: 5 });
  it("never expire, are never warned about, never sleep", async () => {
    const { mayFallAsleep } = await import("./idle.js");
    assert.equal(expiryDue(services, NOW + 365 * 24 * 60 * MINUTE), false);
    assert.equal(nextExpiry([services], NOW), undefined);
    assert.equal(warningAt(services, 5 * MINUTE), undefined);
    assert.equal(nextWakeUp([services], NOW, 5 * MINUTE), undefined);
    assert.equal(mayFallAsleep(services), false);
    assert.equal(mayFallAsleep({ ...services, system: undefined }), true, "the same cluster, a user's, would");
  });
  it("may be started (after a failure) but not stopped, extended or deleted", () => {
    assert.equal(conflictFor("start", { ...services, phase: "failed" }), undefined);
    for (const op of ["stop", "extend", "delete"] as const)
      assert.match(conflictFor(op, services) ?? "", /is the server's services cluster: it is kept running/);
  });
});
