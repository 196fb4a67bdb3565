import assert from "node:assert/strict";
import { after, it } from "node:test";
import type { ClusterRecord } from "../core/cluster-record.js";
import type { OutgoingNotification } from "../core/notifications.js";
import { capacityRefusal, NO_LIMITS, type TokenIdentity } from "../core/quota.js";
import type { Admission, Store } from "../store/store.js";

// What every store must do, whatever its database: store.test.ts runs it on SQLite,
// store-postgres.integration.test.ts on a real PostgreSQL server.

/** Past 2^31 ms, as real timestamps are: PostgreSQL's bigint must come back as a number. */
const NOW = Date.UTC(2026, 0, 1);
const MINUTE = 60_000;

export const refusedAs = (type: string, text: RegExp) => (e: Error & { type?: string }) =>
  e.type === type && text.test(e.message);

function record(id: string, changes: Partial<ClusterRecord> = {}): ClusterRecord {
  return {
    id,
    owner: "alice",
    name: `name-${id}`,
    spec: { id, kubernetesVersion: "1.34", privileged: false, size: "1-small", workers: 0 },
    keep: false,
    notificationEmail: "alice@example.com",
    desired: "running",
    phase: "pending",
    ttlMinutes: 30,
    expiresAt: NOW + 30 * MINUTE,
    createdAt: NOW,
    updatedAt: NOW,
    lastError: null,
    timings: {},
    generation: 0,
    labels: { team: "a" },
    pooled: false,
    idleMinutes: 0,
    runningSince: null,
    sleptAt: null,
    frozenAt: null,
    ...changes,
  };
}

/** Room for `capacity` running clusters on the host, any number per owner. */
const hostOf =
  (capacity: number): Admission =>
  (counts) =>
    capacityRefusal({ id: 1, name: "alice", admin: false, limits: NO_LIMITS }, counts, capacity);

const note = (clusterId: string, key: string): OutgoingNotification => ({
  dedupeKey: key,
  clusterId,
  event: "ready",
  channel: "email",
  recipient: "alice@example.com",
  payload: { at: NOW },
});

/** The same behaviour, whatever the database: each test gets a new, empty store. */
export function storeContract(fresh: () => Promise<Store>): void {
  const stores: Store[] = [];
  const open = async () => {
    const store = await fresh();
    stores.push(store);
    return store;
  };
  after(async () => {
    await Promise.all(stores.map((s) => s.close()));
  });

  it("keeps clusters: insert, get, update, list (users' only), allClusters", async () => {
    const store = await open();
    const a = record("aaa1", {
      keep: true,
      timings: { provision: 1234 },
      expiresAt: NOW + 2 ** 40,
      idleMinutes: 15,
      runningSince: NOW + 3,
      sleptAt: NOW + 4,
    });
    await store.clusters.insert(a);
    await store.clusters.insert(record("bbb2", { owner: "bob", createdAt: NOW + 1 }));
    await store.clusters.insert(record("ccc3", { owner: "pool", pooled: true, createdAt: NOW + 2 }));
    assert.deepEqual(await store.clusters.get("aaa1"), a, "every field comes back as it went in, numbers as numbers");
    assert.equal(await store.clusters.get("nope"), undefined);

    const next = await store.clusters.update(
      "aaa1",
      { phase: "running", generation: 3, lastError: "x", labels: { team: "b" } },
      { now: NOW + 5 },
    );
    assert.deepEqual(next, {
      ...a,
      phase: "running",
      generation: 3,
      lastError: "x",
      labels: { team: "b" },
      updatedAt: NOW + 5,
    });
    assert.deepEqual(await store.clusters.get("aaa1"), next);
    await assert.rejects(
      store.clusters.update("nope", { phase: "running" }, { now: NOW }),
      refusedAs("not-found", /cluster nope not found/),
    );

    assert.deepEqual(
      (await store.clusters.list()).map((r) => r.id),
      ["aaa1", "bbb2"],
      "the pool's are not listed",
    );
    assert.deepEqual(
      (await store.clusters.list("bob")).map((r) => r.id),
      ["bbb2"],
    );
    assert.deepEqual(
      (await store.clusters.all()).map((r) => [r.id, r.pooled]),
      [
        ["aaa1", false],
        ["bbb2", false],
        ["ccc3", true],
      ],
    );
  });

  it("queues notifications with the change that causes them, each dedupe key once", async () => {
    const store = await open();
    await store.clusters.insert(record("aaa1"));
    await store.clusters.update(
      "aaa1",
      { phase: "running" },
      { now: NOW + 1, notify: (next) => [note(next.id, "aaa1/ready/1")] },
    );
    await store.clusters.update(
      "aaa1",
      { phase: "running" },
      { now: NOW + 2, notify: (next) => [note(next.id, "aaa1/ready/1"), note(next.id, "aaa1/ready/1")] },
    );
    await assert.rejects(
      store.clusters.update(
        "aaa1",
        { phase: "failed" },
        {
          now: NOW + 3,
          notify: () => {
            throw new Error("notify failed");
          },
        },
      ),
    );
    assert.equal((await store.clusters.get("aaa1"))?.phase, "running", "no change without its notifications");

    const [queued, ...others] = await store.outbox.due(NOW + 1);
    assert.equal(others.length, 0, "one row per dedupe key, ever");
    assert.deepEqual(
      { ...queued, id: 0 },
      {
        id: 0,
        dedupeKey: "aaa1/ready/1",
        clusterId: "aaa1",
        event: "ready",
        channel: "email",
        recipient: "alice@example.com",
        payload: { at: NOW },
        attempts: 0,
        nextAttemptAt: NOW + 1,
        sentAt: null,
        lastError: null,
      },
    );
    assert.equal(typeof queued.id, "number");
    assert.equal(await store.outbox.nextDue(), NOW + 1);
    await store.outbox.markFailed(queued.id, "smtp down", 1, NOW + MINUTE);
    assert.deepEqual(await store.outbox.due(NOW + 2), [], "not due before its retry");
    assert.equal(await store.outbox.nextDue(), NOW + MINUTE);
    await store.outbox.markSent(queued.id, NOW + MINUTE);
    assert.equal(await store.outbox.nextDue(), undefined);
    const [sent] = await store.outbox.list("aaa1");
    assert.deepEqual([sent.attempts, sent.sentAt, sent.lastError], [1, NOW + MINUTE, null]);
    assert.deepEqual(await store.outbox.list("other"), []);
  });

  it("keeps tokens: create, identify, list, revoke; refuses to revoke the last admin token", async () => {
    const store = await open();
    const admin = await store.tokens.create("admin", true, NOW);
    const limits = {
      maxClusters: 2,
      maxTtlMinutes: 60,
      sizes: ["1-small"],
      privileged: false,
      maxServices: 1,
      maxServiceMinutes: 30,
    };
    const ci = await store.tokens.create("ci", false, NOW + 1, limits);
    assert.match(ci.token, /^tk_/);
    assert.deepEqual(await store.tokens.identify(admin.token), {
      id: admin.identity.id,
      name: "admin",
      admin: true,
      limits: NO_LIMITS,
      createdAt: NOW,
      revokedAt: null,
    });
    assert.deepEqual(await store.tokens.identify(ci.token), {
      id: ci.identity.id,
      name: "ci",
      admin: false,
      limits,
      createdAt: NOW + 1,
      revokedAt: null,
    });
    assert.equal(await store.tokens.identify("tk_unknown"), undefined);
    const defaults = await store.tokens.create("defaults", false, NOW + 2);
    assert.deepEqual(defaults.identity.limits, {
      maxClusters: 3,
      maxTtlMinutes: 24 * 60,
      sizes: null,
      privileged: false,
      maxServices: 5,
      maxServiceMinutes: 24 * 60,
    });
    assert.deepEqual(
      (await store.tokens.list()).map((t) => [t.id, t.name, t.createdAt, t.revokedAt]),
      [
        [admin.identity.id, "admin", NOW, null],
        [ci.identity.id, "ci", NOW + 1, null],
        [defaults.identity.id, "defaults", NOW + 2, null],
      ],
    );
    assert.deepEqual((await store.tokens.get(ci.identity.id))?.limits, limits);
    assert.equal(await store.tokens.get(9999), undefined);

    const revoked = await store.tokens.revoke(ci.identity.id, NOW + 10);
    assert.equal(revoked.revokedAt, NOW + 10);
    assert.equal(await store.tokens.identify(ci.token), undefined, "a revoked token identifies nobody");
    await assert.rejects(store.tokens.revoke(ci.identity.id, NOW + 11), refusedAs("conflict", /already revoked/));
    await assert.rejects(store.tokens.revoke(9999, NOW), refusedAs("not-found", /token 9999 not found/));
    await assert.rejects(store.tokens.revoke(admin.identity.id, NOW), refusedAs("conflict", /last admin token/));
    const second = await store.tokens.create("admin-2", true, NOW);
    await store.tokens.revoke(admin.identity.id, NOW + 12);
    await assert.rejects(store.tokens.revoke(second.identity.id, NOW), refusedAs("conflict", /last admin token/));
  });

  it("refuses admission over the limit inside the transaction, and writes nothing then", async () => {
    const store = await open();
    await store.clusters.insert(record("aaa1"), hostOf(1));
    await store.clusters.insert(record("pool1", { owner: "pool", pooled: true, phase: "running" }));
    await store.clusters.insert(record("bbb2", { desired: "stopped", phase: "stopped" }));
    await assert.rejects(
      store.clusters.insert(record("ccc3"), hostOf(1)),
      refusedAs("capacity", /host capacity reached: 1 of 1/),
    );
    assert.equal(await store.clusters.get("ccc3"), undefined);
    await assert.rejects(
      store.clusters.update(
        "bbb2",
        { desired: "running" },
        { now: NOW, notify: () => [note("bbb2", "bbb2/start")], admit: hostOf(1) },
      ),
      refusedAs("capacity", /1 of 1/),
    );
    assert.equal((await store.clusters.get("bbb2"))?.desired, "stopped");
    await assert.rejects(
      store.clusters.claimPooled(
        () => true,
        (r) => ({ ...r, owner: "alice", pooled: false }),
        hostOf(1),
        () => [],
      ),
      refusedAs("capacity", /1 of 1/),
    );
    assert.equal((await store.clusters.get("pool1"))?.pooled, true, "a refused claim leaves the cluster in the pool");
    assert.deepEqual(await store.outbox.list(), []);
    await store.clusters.update("aaa1", { desired: "stopped" }, { now: NOW });
    await store.clusters.update("bbb2", { desired: "running" }, { now: NOW, admit: hostOf(1) });
  });

  it("counts a sleeping cluster against its owner's quota but not against the host's capacity", async () => {
    const store = await open();
    const quotaOf =
      (max: number): Admission =>
      (counts) =>
        capacityRefusal(
          { id: 1, name: "alice", admin: false, limits: { ...NO_LIMITS, maxClusters: max } },
          counts,
          Number.POSITIVE_INFINITY,
        );
    await store.clusters.insert(record("aaa1", { phase: "sleeping", sleptAt: NOW }));
    await assert.rejects(
      store.clusters.insert(record("bbb2"), quotaOf(1)),
      refusedAs("forbidden", /may run 1 cluster\(s\) at once and runs 1 \(sleeping ones count\)/),
    );
    await store.clusters.insert(record("bbb2", { owner: "bob" }), hostOf(1));
    await assert.rejects(
      store.clusters.insert(record("ccc3", { owner: "bob" }), hostOf(1)),
      refusedAs("capacity", /1 of 1/),
    );
  });

  it("counts warm-pool clusters wanted running apart from users' at admission", async () => {
    const store = await open();
    await store.clusters.insert(record("aaa1", { phase: "running" }));
    await store.clusters.insert(record("bbb2", { phase: "sleeping", sleptAt: NOW }));
    await store.clusters.insert(record("fff4", { phase: "running", frozenAt: NOW }));
    await store.clusters.insert(record("pool1", { owner: "", pooled: true, phase: "running" }));
    await store.clusters.insert(record("pool2", { owner: "", pooled: true, phase: "provisioning" }));
    await store.clusters.insert(record("pool3", { owner: "", pooled: true, desired: "terminated" }));
    let seen: unknown;
    await store.clusters.insert(record("ccc3"), (counts) => {
      seen = counts;
      return undefined;
    });
    assert.deepEqual(seen, { owner: 3, total: 2, pooled: 2, frozen: 1 });
  });

  it("checks a conflict inside the update's transaction, and writes nothing then", async () => {
    const store = await open();
    await store.clusters.insert(record("aaa1", { phase: "running" }));
    const unlessSleeping = (r: ClusterRecord) => (r.phase === "sleeping" ? undefined : `cluster is ${r.phase}`);
    await assert.rejects(
      store.clusters.update("aaa1", { phase: "starting" }, { now: NOW + 1, conflict: unlessSleeping }),
      refusedAs("conflict", /cluster is running/),
    );
    assert.equal((await store.clusters.get("aaa1"))?.updatedAt, NOW);
    await store.clusters.update("aaa1", { phase: "sleeping" }, { now: NOW + 2 });
    const woken = await store.clusters.update(
      "aaa1",
      { phase: "starting" },
      { now: NOW + 3, conflict: unlessSleeping },
    );
    assert.equal(woken.phase, "starting");
  });

  it("hands a running pool cluster to one user", async () => {
    const store = await open();
    await store.clusters.insert(record("pool1", { owner: "pool", pooled: true, phase: "running" }));
    await store.clusters.insert(record("pool2", { owner: "pool", pooled: true, phase: "provisioning" }));
    const claim = (r: ClusterRecord) => ({ ...r, owner: "alice", pooled: false, updatedAt: NOW + 1 });
    const mine = await store.clusters.claimPooled(
      (r) => r.spec.size === "1-small",
      claim,
      hostOf(5),
      (r) => [note(r.id, `${r.id}/claimed`)],
    );
    assert.equal(mine?.id, "pool1");
    assert.deepEqual(await store.clusters.get("pool1"), mine);
    assert.equal(
      await store.clusters.claimPooled(
        () => true,
        claim,
        hostOf(5),
        () => [],
      ),
      undefined,
      "none left ready",
    );
    assert.deepEqual(
      (await store.outbox.list()).map((m) => m.dedupeKey),
      ["pool1/claimed"],
    );
  });

  it("admits exactly one of many concurrent creates for the last place", async () => {
    const store = await open();
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => store.clusters.insert(record(`par${i}`), hostOf(1))),
    );
    assert.equal(
      results.filter((r) => r.status === "fulfilled").length,
      1,
      JSON.stringify(results.map((r) => r.status)),
    );
    for (const r of results)
      if (r.status === "rejected") assert.ok(refusedAs("capacity", /1 of 1/)(r.reason as Error), String(r.reason));
    assert.equal((await store.clusters.all()).length, 1);

    // Starting stopped clusters and claiming from the pool take the same place.
    await store.clusters.update(
      "par" + results.findIndex((r) => r.status === "fulfilled"),
      { desired: "stopped" },
      { now: NOW },
    );
    for (let i = 0; i < 4; i++)
      await store.clusters.insert(record(`stop${i}`, { desired: "stopped", phase: "stopped" }));
    await store.clusters.insert(record("pool1", { owner: "pool", pooled: true, phase: "running" }));
    const claim = (r: ClusterRecord) => ({ ...r, owner: "alice", pooled: false });
    const mixed = await Promise.allSettled([
      ...[0, 1, 2, 3].map((i) =>
        store.clusters.update(`stop${i}`, { desired: "running" }, { now: NOW, admit: hostOf(1) }),
      ),
      store.clusters.claimPooled(
        () => true,
        claim,
        hostOf(1),
        () => [],
      ),
      store.clusters.claimPooled(
        () => true,
        claim,
        hostOf(1),
        () => [],
      ),
    ]);
    const running = (await store.clusters.list()).filter((r) => r.desired === "running");
    assert.equal(running.length, 1, `one place, one running cluster: ${running.map((r) => r.id).join(", ")}`);
    assert.equal(mixed.filter((r) => r.status === "fulfilled" && r.value !== undefined).length, 1);
  });

  it("keeps the server's own clusters: marked, nobody's, made once however many ask at once", async () => {
    const store = await open();
    await store.clusters.insert(record("user1"));
    const services = (id: string) => ({
      ...record(id, { owner: "", name: "services", notificationEmail: null }),
      system: "services" as const,
    });
    const results = await Promise.all(
      ["svc1", "svc2", "svc3", "svc4"].map((id) => store.clusters.insertSystem(services(id), hostOf(100))),
    );
    assert.equal(results.filter((r) => r.made).length, 1, "one made");
    const made = results.find((r) => r.made)!.record;
    assert.ok(
      results.every((r) => r.record.id === made.id),
      "the others got that one",
    );
    assert.deepEqual(await store.clusters.get(made.id), services(made.id), "system comes back as it went in");
    assert.equal((await store.clusters.get("user1"))?.system, undefined);
    assert.equal((await store.clusters.system("services"))?.id, made.id);
    assert.deepEqual(
      (await store.clusters.list("alice")).map((r) => r.id),
      ["user1"],
    );
    assert.deepEqual(
      (await store.clusters.list("")).map((r) => r.id),
      [],
      "nobody's, not an owner's",
    );
    assert.deepEqual(
      (await store.clusters.list()).map((r) => r.id).sort(),
      [made.id, "user1"].sort(),
      "listed for admins",
    );
    // It takes a place on the host: a host of two is full with it and one user's cluster.
    await assert.rejects(
      store.clusters.insert(record("user2"), hostOf(2)),
      refusedAs("capacity", /2 of 2 clusters are running/),
    );
    // Once terminated, the next is made anew; a full host refuses it, making nothing.
    await store.clusters.update(made.id, { desired: "terminated" }, { now: NOW });
    assert.equal(await store.clusters.system("services"), undefined);
    await assert.rejects(
      store.clusters.insertSystem(services("svc5"), hostOf(1)),
      refusedAs("capacity", /host capacity reached/),
    );
    assert.equal(await store.clusters.get("svc5"), undefined);
    // From the pool: a ready member it matches becomes it, in the same transaction.
    await store.clusters.insert(record("pool1", { owner: "", pooled: true, phase: "running" }));
    const claimed = await store.clusters.insertSystem(services("svc6"), hostOf(100), {
      match: (r) => r.id === "pool1",
      claim: (r) => ({ ...r, pooled: false, system: "services", name: "services" }),
    });
    assert.deepEqual([claimed.made, claimed.record.id], [true, "pool1"]);
    assert.deepEqual(
      [(await store.clusters.get("pool1"))?.system, (await store.clusters.get("pool1"))?.pooled],
      ["services", false],
    );
    assert.equal(await store.clusters.get("svc6"), undefined);
  });

  it("queues messages no cluster change causes, each dedupe key once", async () => {
    const store = await open();
    await store.outbox.queue([note("svc1", "service:a"), note("svc1", "service:a")], NOW);
    await store.outbox.queue([note("svc1", "service:a")], NOW + 1);
    await store.outbox.queue([], NOW + 2);
    assert.deepEqual(
      (await store.outbox.list("svc1")).map((m) => [m.dedupeKey, m.nextAttemptAt]),
      [["service:a", NOW]],
    );
  });

  it("hands one pool cluster to one of many concurrent claims", async () => {
    const store = await open();
    await store.clusters.insert(record("pool1", { owner: "pool", pooled: true, phase: "running" }));
    const claims = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        store.clusters.claimPooled(
          () => true,
          (r) => ({ ...r, owner: `user${i}`, pooled: false }),
          hostOf(100),
          (r) => [note(r.id, `claim/${i}`)],
        ),
      ),
    );
    const winners = claims.filter((c) => c !== undefined);
    assert.equal(winners.length, 1);
    assert.equal((await store.clusters.get("pool1"))?.owner, winners[0]?.owner);
    assert.equal((await store.outbox.list()).length, 1, "one claim, one notification");
  });

  it("never revokes both of the last two admin tokens at once", async () => {
    const store = await open();
    const a = await store.tokens.create("a", true, NOW);
    const b = await store.tokens.create("b", true, NOW);
    const results = await Promise.allSettled([
      store.tokens.revoke(a.identity.id, NOW),
      store.tokens.revoke(b.identity.id, NOW),
    ]);
    assert.deepEqual(results.map((r) => r.status).sort(), ["fulfilled", "rejected"]);
    assert.equal((await store.tokens.list()).filter((t) => t.admin && t.revokedAt === null).length, 1);
  });

  it("loses no change when updates to one cluster race", async () => {
    const store = await open();
    await store.clusters.insert(record("aaa1"));
    // Each update writes back the whole row it read: without serializing, one would undo another.
    const changes: Partial<ClusterRecord>[] = [
      { phase: "running" },
      { lastError: "boom" },
      { generation: 5 },
      { name: "renamed" },
      { ttlMinutes: 99 },
      { timings: { boot: 1 } },
      { labels: { team: "z" } },
      { keep: true },
      { notificationEmail: null },
      { expiresAt: NOW + 99 * MINUTE },
    ];
    await Promise.all(changes.map((c) => store.clusters.update("aaa1", c, { now: NOW + 1 })));
    assert.deepEqual(await store.clusters.get("aaa1"), {
      ...record("aaa1"),
      ...Object.assign({}, ...changes),
      updatedAt: NOW + 1,
    });
  });
}
