import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ClusterRecord, Phase } from "./cluster-record.js";
import {
  eventForTransition,
  notificationFor,
  notificationsFor,
  onExpiryWarning,
  onPhaseChange,
} from "./notifications.js";

const NOW = Date.UTC(2026, 0, 1);
const HOOK = "https://hooks.example/tempkube";

function record(changes: Partial<ClusterRecord> = {}): ClusterRecord {
  return {
    id: "abc123",
    owner: "1",
    name: "mine",
    spec: { id: "abc123", kubernetesVersion: "1.34", privileged: false, size: "1-small", workers: 0 },
    keep: false,
    notificationEmail: "me@example.com",
    desired: "running",
    phase: "running",
    ttlMinutes: 30,
    expiresAt: NOW + 30 * 60_000,
    createdAt: NOW,
    updatedAt: NOW,
    lastError: null,
    timings: {},
    generation: 3,
    labels: {},
    pooled: false,
    idleMinutes: 0,
    runningSince: null,
    sleptAt: null,
    frozenAt: null,
    ...changes,
  };
}

describe("which phase change is an event", () => {
  it("is ready after provisioning, started after anything else, and stopped, terminated, failed as such", () => {
    const cases: [Phase, Phase, string | undefined][] = [
      ["provisioning", "running", "ready"],
      ["starting", "running", "started"],
      ["stopped", "running", "started"],
      ["stopping", "stopped", "stopped"],
      ["terminating", "terminated", "terminated"],
      ["provisioning", "failed", "failed"],
      ["pending", "provisioning", undefined],
      ["running", "stopping", undefined],
      ["running", "running", undefined],
      ["running", "sleeping", undefined],
      ["sleeping", "stopped", "stopped"],
      ["sleeping", "terminating", undefined],
    ];
    for (const [before, after, event] of cases)
      assert.equal(eventForTransition(before, after), event, `${before} → ${after}`);
  });
});

describe("who is told", () => {
  it("mails the owner's address and calls the webhook, each with its own dedupe key", () => {
    const out = notificationsFor("ready", record(), NOW, { webhookUrl: HOOK });
    assert.deepEqual(
      out.map((m) => [m.channel, m.recipient, m.dedupeKey]),
      [
        ["email", "me@example.com", "abc123:ready:g3:email"],
        ["webhook", HOOK, "abc123:ready:g3:webhook"],
      ],
    );
    assert.equal(out[0].payload, out[1].payload, "one message, two channels");
  });

  it("tells nobody without an address or a webhook, and nobody about a warm-pool cluster", () => {
    assert.deepEqual(notificationsFor("ready", record({ notificationEmail: null }), NOW, {}), []);
    assert.deepEqual(notificationsFor("ready", record({ pooled: true }), NOW, { webhookUrl: HOOK }), []);
  });

  it("queues a phase change's event only when the change is one", () => {
    const notify = onPhaseChange(NOW, {});
    assert.deepEqual(
      notify(record({ phase: "running" }), record({ phase: "provisioning" })).map((m) => m.event),
      ["ready"],
    );
    assert.deepEqual(notify(record({ phase: "provisioning" }), record({ phase: "pending" })), []);
  });

  it("tells nobody of a sleep or a wake, but a start out of stopped and a failed wake as usual", () => {
    const notify = onPhaseChange(NOW, { webhookUrl: HOOK });
    assert.deepEqual(notify(record({ phase: "sleeping", sleptAt: NOW }), record({ phase: "running" })), []);
    const waking = record({ phase: "starting", sleptAt: NOW - 60_000 });
    assert.deepEqual(notify(record({ phase: "running", sleptAt: null }), waking), [], "the wake");
    assert.deepEqual(
      notify(record({ phase: "failed", sleptAt: null }), waking).map((m) => m.event),
      ["failed", "failed"],
      "a wake that fails is a failure like any other",
    );
    assert.deepEqual(
      notify(record({ phase: "running" }), record({ phase: "starting" })).map((m) => m.event),
      ["started", "started"],
    );
  });

  it("keys an expiry warning by the expiry it warns of, so an extend earns a new warning", () => {
    const warn = onExpiryWarning(NOW, {});
    const first = warn(record(), record());
    const extended = warn(record({ expiresAt: NOW + 90 * 60_000 }), record());
    assert.equal(first[0].dedupeKey, `abc123:expiry-warning:${NOW + 30 * 60_000}:email`);
    assert.notEqual(first[0].dedupeKey, extended[0].dedupeKey);
  });
});

describe("the words", () => {
  it("say when the cluster expires and what happens then", () => {
    const ready = notificationFor("ready", record({ keep: true }), NOW);
    assert.equal(ready.subject, "cluster abc123 is ready");
    assert.match(
      ready.text,
      /Kubernetes 1\.34 cluster abc123 is ready at 2026-01-01T00:00:00\.000Z\. It expires at 2026-01-01T00:30:00\.000Z and will then be stopped\./,
    );
    assert.match(notificationFor("expiry-warning", record(), NOW).text, /will then be terminated\. Extend it/);
    assert.match(
      notificationFor("failed", record({ lastError: "kubelet exited" }), NOW).text,
      /failed at .*: kubelet exited$/,
    );
    assert.deepEqual(ready.payload, {
      event: "ready",
      clusterId: "abc123",
      name: "mine",
      phase: "running",
      expiresAt: "2026-01-01T00:30:00.000Z",
      at: "2026-01-01T00:00:00.000Z",
      subject: ready.subject,
      text: ready.text,
    });
  });
});
