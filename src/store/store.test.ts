import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import SQLite from "better-sqlite3";
import type { ClusterRecord } from "../core/cluster-record.js";
import { capacityRefusal, NO_LIMITS, type TokenIdentity } from "../core/quota.js";
import { TestPostgres } from "../testing/postgres.js";
import { Store, type Admission, type NewOutboxMessage } from "./store.js";

/** Past 2^31 ms, as real timestamps are: PostgreSQL's bigint must come back as a number. */
const NOW = Date.UTC(2026, 0, 1);
const MINUTE = 60_000;

const refusedAs = (type: string, text: RegExp) => (e: Error & { type?: string }) => e.type === type && text.test(e.message);

function record(id: string, changes: Partial<ClusterRecord> = {}): ClusterRecord {
  return {
    id, owner: "alice", name: `name-${id}`, spec: { id, kubernetesVersion: "1.34", privileged: false, size: "1-small", workers: 0 },
    keep: false, notificationEmail: "alice@example.com", desired: "running", phase: "pending", ttlMinutes: 30,
    expiresAt: NOW + 30 * MINUTE, createdAt: NOW, updatedAt: NOW, lastError: null, timings: {}, generation: 0,
    labels: { team: "a" }, pooled: false, ...changes,
  };
}

/** Room for `capacity` running clusters on the host, any number per owner. */
const hostOf = (capacity: number): Admission => (counts) =>
  capacityRefusal({ id: 1, name: "alice", admin: false, limits: NO_LIMITS }, counts, capacity);

const note = (clusterId: string, key: string): NewOutboxMessage =>
  ({ dedupeKey: key, clusterId, event: "ready", channel: "email", recipient: "alice@example.com", payload: { at: NOW } });

/** The same behaviour, whatever the database: each test gets a new, empty store. */
function contract(fresh: () => Promise<Store>): void {
  const stores: Store[] = [];
  const open = async () => {
    const store = await fresh();
    stores.push(store);
    return store;
  };
  after(async () => { await Promise.all(stores.map((s) => s.close())); });

  it("keeps clusters: insert, get, update, list (users' only), allClusters", async () => {
    const store = await open();
    const a = record("aaa1", { keep: true, timings: { provision: 1234 }, expiresAt: NOW + 2 ** 40 });
    await store.insertCluster(a);
    await store.insertCluster(record("bbb2", { owner: "bob", createdAt: NOW + 1 }));
    await store.insertCluster(record("ccc3", { owner: "pool", pooled: true, createdAt: NOW + 2 }));
    assert.deepEqual(await store.getCluster("aaa1"), a, "every field comes back as it went in, numbers as numbers");
    assert.equal(await store.getCluster("nope"), undefined);

    const next = await store.updateCluster("aaa1", { phase: "running", generation: 3, lastError: "x", labels: { team: "b" } }, NOW + 5);
    assert.deepEqual(next, { ...a, phase: "running", generation: 3, lastError: "x", labels: { team: "b" }, updatedAt: NOW + 5 });
    assert.deepEqual(await store.getCluster("aaa1"), next);
    await assert.rejects(store.updateCluster("nope", { phase: "running" }, NOW), refusedAs("not-found", /cluster nope not found/));

    assert.deepEqual((await store.listClusters()).map((r) => r.id), ["aaa1", "bbb2"], "the pool's are not listed");
    assert.deepEqual((await store.listClusters("bob")).map((r) => r.id), ["bbb2"]);
    assert.deepEqual((await store.allClusters()).map((r) => [r.id, r.pooled]), [["aaa1", false], ["bbb2", false], ["ccc3", true]]);
  });

  it("queues notifications with the change that causes them, each dedupe key once", async () => {
    const store = await open();
    await store.insertCluster(record("aaa1"));
    await store.updateCluster("aaa1", { phase: "running" }, NOW + 1, (next) => [note(next.id, "aaa1/ready/1")]);
    await store.updateCluster("aaa1", { phase: "running" }, NOW + 2, (next) => [note(next.id, "aaa1/ready/1"), note(next.id, "aaa1/ready/1")]);
    await assert.rejects(store.updateCluster("aaa1", { phase: "failed" }, NOW + 3, () => { throw new Error("notify failed"); }));
    assert.equal((await store.getCluster("aaa1"))?.phase, "running", "no change without its notifications");

    const [queued, ...others] = await store.dueMessages(NOW + 1);
    assert.equal(others.length, 0, "one row per dedupe key, ever");
    assert.deepEqual({ ...queued, id: 0 }, {
      id: 0, dedupeKey: "aaa1/ready/1", clusterId: "aaa1", event: "ready", channel: "email", recipient: "alice@example.com",
      payload: { at: NOW }, attempts: 0, nextAttemptAt: NOW + 1, sentAt: null, lastError: null,
    });
    assert.equal(typeof queued.id, "number");
    assert.equal(await store.nextMessageDue(), NOW + 1);
    await store.markFailed(queued.id, "smtp down", 1, NOW + MINUTE);
    assert.deepEqual(await store.dueMessages(NOW + 2), [], "not due before its retry");
    assert.equal(await store.nextMessageDue(), NOW + MINUTE);
    await store.markSent(queued.id, NOW + MINUTE);
    assert.equal(await store.nextMessageDue(), undefined);
    const [sent] = await store.messages("aaa1");
    assert.deepEqual([sent.attempts, sent.sentAt, sent.lastError], [1, NOW + MINUTE, null]);
    assert.deepEqual(await store.messages("other"), []);
  });

  it("keeps tokens: create, identify, list, revoke; refuses to revoke the last admin token", async () => {
    const store = await open();
    const admin = await store.createToken("admin", true, NOW);
    const limits = { maxClusters: 2, maxTtlMinutes: 60, sizes: ["1-small"], privileged: false };
    const ci = await store.createToken("ci", false, NOW + 1, limits);
    assert.match(ci.token, /^tk_/);
    assert.deepEqual(await store.identify(admin.token), { id: admin.identity.id, name: "admin", admin: true, limits: NO_LIMITS, createdAt: NOW, revokedAt: null });
    assert.deepEqual(await store.identify(ci.token), { id: ci.identity.id, name: "ci", admin: false, limits, createdAt: NOW + 1, revokedAt: null });
    assert.equal(await store.identify("tk_unknown"), undefined);
    const defaults = await store.createToken("defaults", false, NOW + 2);
    assert.deepEqual(defaults.identity.limits, { maxClusters: 3, maxTtlMinutes: 24 * 60, sizes: null, privileged: false });
    assert.deepEqual((await store.listTokens()).map((t) => [t.id, t.name, t.createdAt, t.revokedAt]),
      [[admin.identity.id, "admin", NOW, null], [ci.identity.id, "ci", NOW + 1, null], [defaults.identity.id, "defaults", NOW + 2, null]]);
    assert.deepEqual((await store.getToken(ci.identity.id))?.limits, limits);
    assert.equal(await store.getToken(9999), undefined);

    const revoked = await store.revokeToken(ci.identity.id, NOW + 10);
    assert.equal(revoked.revokedAt, NOW + 10);
    assert.equal(await store.identify(ci.token), undefined, "a revoked token identifies nobody");
    await assert.rejects(store.revokeToken(ci.identity.id, NOW + 11), refusedAs("conflict", /already revoked/));
    await assert.rejects(store.revokeToken(9999, NOW), refusedAs("not-found", /token 9999 not found/));
    await assert.rejects(store.revokeToken(admin.identity.id, NOW), refusedAs("conflict", /last admin token/));
    const second = await store.createToken("admin-2", true, NOW);
    await store.revokeToken(admin.identity.id, NOW + 12);
    await assert.rejects(store.revokeToken(second.identity.id, NOW), refusedAs("conflict", /last admin token/));
  });

  it("refuses admission over the limit inside the transaction, and writes nothing then", async () => {
    const store = await open();
    await store.insertCluster(record("aaa1"), hostOf(1));
    await store.insertCluster(record("pool1", { owner: "pool", pooled: true, phase: "running" }));
    await store.insertCluster(record("bbb2", { desired: "stopped", phase: "stopped" }));
    await assert.rejects(store.insertCluster(record("ccc3"), hostOf(1)), refusedAs("capacity", /host capacity reached: 1 of 1/));
    assert.equal(await store.getCluster("ccc3"), undefined);
    await assert.rejects(store.updateCluster("bbb2", { desired: "running" }, NOW, () => [note("bbb2", "bbb2/start")], hostOf(1)),
      refusedAs("capacity", /1 of 1/));
    assert.equal((await store.getCluster("bbb2"))?.desired, "stopped");
    await assert.rejects(store.claimPooled(() => true, (r) => ({ ...r, owner: "alice", pooled: false }), hostOf(1), () => []),
      refusedAs("capacity", /1 of 1/));
    assert.equal((await store.getCluster("pool1"))?.pooled, true, "a refused claim leaves the cluster in the pool");
    assert.deepEqual(await store.messages(), []);
    await store.updateCluster("aaa1", { desired: "stopped" }, NOW);
    await store.updateCluster("bbb2", { desired: "running" }, NOW, () => [], hostOf(1));
  });

  it("hands a running pool cluster to one user", async () => {
    const store = await open();
    await store.insertCluster(record("pool1", { owner: "pool", pooled: true, phase: "running" }));
    await store.insertCluster(record("pool2", { owner: "pool", pooled: true, phase: "provisioning" }));
    const claim = (r: ClusterRecord) => ({ ...r, owner: "alice", pooled: false, updatedAt: NOW + 1 });
    const mine = await store.claimPooled((r) => r.spec.size === "1-small", claim, hostOf(5), (r) => [note(r.id, `${r.id}/claimed`)]);
    assert.equal(mine?.id, "pool1");
    assert.deepEqual(await store.getCluster("pool1"), mine);
    assert.equal(await store.claimPooled(() => true, claim, hostOf(5), () => []), undefined, "none left ready");
    assert.deepEqual((await store.messages()).map((m) => m.dedupeKey), ["pool1/claimed"]);
  });

  it("admits exactly one of many concurrent creates for the last place", async () => {
    const store = await open();
    const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => store.insertCluster(record(`par${i}`), hostOf(1))));
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 1, JSON.stringify(results.map((r) => r.status)));
    for (const r of results) if (r.status === "rejected") assert.ok(refusedAs("capacity", /1 of 1/)(r.reason as Error), String(r.reason));
    assert.equal((await store.allClusters()).length, 1);

    // Starting stopped clusters and claiming from the pool take the same place.
    await store.updateCluster("par" + results.findIndex((r) => r.status === "fulfilled"), { desired: "stopped" }, NOW);
    for (let i = 0; i < 4; i++) await store.insertCluster(record(`stop${i}`, { desired: "stopped", phase: "stopped" }));
    await store.insertCluster(record("pool1", { owner: "pool", pooled: true, phase: "running" }));
    const claim = (r: ClusterRecord) => ({ ...r, owner: "alice", pooled: false });
    const mixed = await Promise.allSettled([
      ...[0, 1, 2, 3].map((i) => store.updateCluster(`stop${i}`, { desired: "running" }, NOW, () => [], hostOf(1))),
      store.claimPooled(() => true, claim, hostOf(1), () => []),
      store.claimPooled(() => true, claim, hostOf(1), () => []),
    ]);
    const running = (await store.listClusters()).filter((r) => r.desired === "running");
    assert.equal(running.length, 1, `one place, one running cluster: ${running.map((r) => r.id).join(", ")}`);
    assert.equal(mixed.filter((r) => r.status === "fulfilled" && r.value !== undefined).length, 1);
  });

  it("hands one pool cluster to one of many concurrent claims", async () => {
    const store = await open();
    await store.insertCluster(record("pool1", { owner: "pool", pooled: true, phase: "running" }));
    const claims = await Promise.all(Array.from({ length: 6 }, (_, i) =>
      store.claimPooled(() => true, (r) => ({ ...r, owner: `user${i}`, pooled: false }), hostOf(100), (r) => [note(r.id, `claim/${i}`)])));
    const winners = claims.filter((c) => c !== undefined);
    assert.equal(winners.length, 1);
    assert.equal((await store.getCluster("pool1"))?.owner, winners[0]?.owner);
    assert.equal((await store.messages()).length, 1, "one claim, one notification");
  });

  it("never revokes both of the last two admin tokens at once", async () => {
    const store = await open();
    const a = await store.createToken("a", true, NOW);
    const b = await store.createToken("b", true, NOW);
    const results = await Promise.allSettled([store.revokeToken(a.identity.id, NOW), store.revokeToken(b.identity.id, NOW)]);
    assert.deepEqual(results.map((r) => r.status).sort(), ["fulfilled", "rejected"]);
    assert.equal((await store.listTokens()).filter((t) => t.admin && t.revokedAt === null).length, 1);
  });

  it("loses no change when updates to one cluster race", async () => {
    const store = await open();
    await store.insertCluster(record("aaa1"));
    // Each update writes back the whole row it read: without serializing, one would undo another.
    const changes: Partial<ClusterRecord>[] = [
      { phase: "running" }, { lastError: "boom" }, { generation: 5 }, { name: "renamed" }, { ttlMinutes: 99 }, { timings: { boot: 1 } },
      { labels: { team: "z" } }, { keep: true }, { notificationEmail: null }, { expiresAt: NOW + 99 * MINUTE },
    ];
    await Promise.all(changes.map((c) => store.updateCluster("aaa1", c, NOW + 1)));
    assert.deepEqual(await store.getCluster("aaa1"), { ...record("aaa1"), ...Object.assign({}, ...changes), updatedAt: NOW + 1 });
  });
}

describe("store on SQLite", () => {
  let dir: string;
  let n = 0;
  before(async () => { dir = await mkdtemp(join(tmpdir(), "tempkube-store-")); });
  after(async () => { await rm(dir, { recursive: true, force: true }); });
  contract(() => Store.open(join(dir, `store-${n++}.db`)));

  it("keeps the schema databases made before PostgreSQL support have", async () => {
    const file = join(dir, "schema.db");
    await (await Store.openSqlite(file)).close();
    const db = new SQLite(file, { readonly: true });
    const sql = (name: string) => (db.prepare("select sql from sqlite_master where name = ?").get(name) as { sql: string }).sql;
    try {
      assert.match(sql("tokens"), /"id" integer primary key autoincrement/);
      assert.match(sql("outbox"), /"id" integer primary key autoincrement/);
    } finally {
      db.close();
    }
  });
});

describe("store on PostgreSQL", () => {
  let postgres: TestPostgres | undefined;
  let n = 0;
  before(async () => { postgres = await TestPostgres.start(); });
  contract(async () => {
    assert.ok(postgres, "PostgreSQL did not start (see the before hook's error)");
    return Store.open(await postgres.createDatabase(`store_${n++}`));
  });
  // After the contract's hook has closed its stores.
  after(async () => { await postgres?.stop(); });

  it("runs the same migrations: identity keys, bigint times", async () => {
    assert.ok(postgres);
    const url = await postgres.createDatabase("schema");
    await (await Store.openPostgres(url)).close();
    const again = await Store.openPostgres(url);
    await again.close();
    const { Client } = (await import("pg")).default;
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query<{ table_name: string; column_name: string; data_type: string; is_identity: string }>(
        "select table_name, column_name, data_type, is_identity from information_schema.columns where table_schema = 'public' and table_name in ('clusters', 'tokens', 'outbox') and column_name in ('id', 'expires_at', 'revoked_at')");
      const types = Object.fromEntries(rows.map((r) => [`${r.table_name}.${r.column_name}`, `${r.data_type}${r.is_identity === "YES" ? " identity" : ""}`]));
      assert.deepEqual(types, {
        "clusters.id": "text", "clusters.expires_at": "bigint", "tokens.id": "integer identity", "tokens.revoked_at": "bigint", "outbox.id": "integer identity",
      });
      const { rows: done } = await client.query<{ name: string }>("select name from kysely_migration order by name");
      assert.deepEqual(done.map((r) => r.name), ["001_clusters_and_tokens", "002_outbox", "003_cluster_generation", "004_token_limits_labels_pool"]);
    } finally {
      await client.end();
    }
  });

  it("fails at once on a bad or unreachable database URL, naming it without its password", async () => {
    assert.ok(postgres);
    const stopped = await TestPostgres.start();
    const closedPort = stopped.port;
    await stopped.stop();
    const started = Date.now();
    await assert.rejects(Store.open(`postgres://tempkube:s3cret@127.0.0.1:${closedPort}/tempkube`), (e: Error & { type?: string }) => {
      assert.equal(e.type, "runtime");
      assert.match(e.message, new RegExp(`^cannot connect to PostgreSQL at postgres://tempkube:\\[redacted\\]@127\\.0\\.0\\.1:${closedPort}/tempkube: .*ECONNREFUSED`));
      assert.doesNotMatch(e.message, /s3cret/);
      return true;
    });
    assert.ok(Date.now() - started < 5000, "no waiting for a refused connection");
    await assert.rejects(Store.open(postgres.url.replace(/\/postgres$/, "/missing")), refusedAs("runtime", /cannot connect to PostgreSQL at .*\/missing: database "missing" does not exist/));
    await assert.rejects(Store.open("postgres://tempkube:p@ss@[::1"), (e: Error & { type?: string }) =>
      e.type === "invalid-input" && /database URL "postgres:\/\/tempkube:\[redacted\]@\[::1" is not a valid URL/.test(e.message) && !e.message.includes("p@ss"));
    await assert.rejects(Store.open("mysql://root:pw@db/tempkube"), refusedAs("invalid-input", /neither a postgres:\/\/ URL nor a SQLite file path/));
  });
});
