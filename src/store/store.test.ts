import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import SQLite from "better-sqlite3";
import { storeContract } from "../testing/store-contract.js";
import { Store } from "./store.js";

describe("store on SQLite", () => {
  let dir: string;
  let n = 0;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tempkube-store-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  storeContract(() => Store.open(join(dir, `store-${n++}.db`)));

  it("keeps the schema databases made before PostgreSQL support have", async () => {
    const file = join(dir, "schema.db");
    await (await Store.openSqlite(file)).close();
    const db = new SQLite(file, { readonly: true });
    const sql = (name: string) =>
      (db.prepare("select sql from sqlite_master where name = ?").get(name) as { sql: string }).sql;
    try {
      assert.match(sql("tokens"), /"id" integer primary key autoincrement/);
      assert.match(sql("outbox"), /"id" integer primary key autoincrement/);
    } finally {
      db.close();
    }
  });

  it("gives tenant tokens made before service limits the tenant defaults, admin tokens none", async () => {
    const file = join(dir, "before-service-limits.db");
    const made = await Store.openSqlite(file);
    const admin = await made.tokens.create("admin", true, 1);
    const ci = await made.tokens.create("ci", false, 2);
    await made.close();
    const db = new SQLite(file);
    try {
      // The database as migration 005 left it.
      for (const column of ["max_services", "max_service_minutes"]) db.exec(`alter table tokens drop column ${column}`);
      for (const column of ["system", "frozen_at"]) db.exec(`alter table clusters drop column ${column}`);
      db.exec(
        "delete from kysely_migration where name in ('006_token_service_limits', '007_cluster_system', '008_cluster_freeze')",
      );
    } finally {
      db.close();
    }
    const store = await Store.openSqlite(file);
    try {
      const limits = async (token: string) => (await store.tokens.identify(token))?.limits;
      assert.deepEqual([(await limits(ci.token))?.maxServices, (await limits(ci.token))?.maxServiceMinutes], [5, 1440]);
      assert.deepEqual(
        [(await limits(admin.token))?.maxServices, (await limits(admin.token))?.maxServiceMinutes],
        [null, null],
      );
    } finally {
      await store.close();
    }
  });

  it("adds the sleep columns to a database made before them, its clusters never sleeping", async () => {
    const file = join(dir, "before-sleep.db");
    await (await Store.openSqlite(file)).close();
    const db = new SQLite(file);
    try {
      // The database as migration 004 left it, with one cluster in it.
      for (const column of ["idle_minutes", "running_since", "slept_at", "system", "frozen_at"])
        db.exec(`alter table clusters drop column ${column}`);
      for (const column of ["max_services", "max_service_minutes"]) db.exec(`alter table tokens drop column ${column}`);
      db.exec(
        "delete from kysely_migration where name in ('005_cluster_sleep', '006_token_service_limits', '007_cluster_system', '008_cluster_freeze')",
      );
      db.prepare(
        `insert into clusters (id, owner, name, spec, keep, notification_email, desired, phase, ttl_minutes, expires_at,
           created_at, updated_at, last_error, timings, generation, labels, pooled)
         values ('old1', '1', null, ?, 0, null, 'running', 'running', 60, 1767229200000, 1767225600000, 1767225600000,
           null, '{}', 0, '{}', 0)`,
      ).run(JSON.stringify({ id: "old1", kubernetesVersion: "1.34", privileged: false, size: "1-small", workers: 0 }));
    } finally {
      db.close();
    }
    const store = await Store.openSqlite(file);
    try {
      const old = await store.clusters.get("old1");
      assert.deepEqual([old?.idleMinutes, old?.runningSince, old?.sleptAt], [0, null, null]);
    } finally {
      await store.close();
    }
  });

  it("adds the system column to a database made before it, its clusters users' (or the pools')", async () => {
    const file = join(dir, "before-system.db");
    await (await Store.openSqlite(file)).close();
    const db = new SQLite(file);
    try {
      // The database as migration 006 left it, with a user's and a pool's cluster in it.
      for (const column of ["system", "frozen_at"]) db.exec(`alter table clusters drop column ${column}`);
      db.exec("delete from kysely_migration where name in ('007_cluster_system', '008_cluster_freeze')");
      const insert = db.prepare(
        `insert into clusters (id, owner, name, spec, keep, notification_email, desired, phase, ttl_minutes, expires_at,
           created_at, updated_at, last_error, timings, generation, labels, pooled, idle_minutes)
         values (?, ?, null, ?, 0, null, 'running', 'running', 60, 1767229200000, 1767225600000, 1767225600000,
           null, '{}', 0, '{}', ?, 0)`,
      );
      for (const [id, owner, pooled] of [
        ["old1", "1", 0],
        ["pool1", "", 1],
      ] as const)
        insert.run(
          id,
          owner,
          JSON.stringify({ id, kubernetesVersion: "1.34", privileged: false, size: "1-small", workers: 0 }),
          pooled,
        );
    } finally {
      db.close();
    }
    const store = await Store.openSqlite(file);
    try {
      assert.deepEqual(
        (await store.clusters.all()).map((r) => [r.id, r.system, r.pooled]),
        [
          ["old1", undefined, false],
          ["pool1", undefined, true],
        ],
      );
      assert.equal(await store.clusters.system("services"), undefined);
      assert.deepEqual(
        (await store.clusters.all()).map((r) => r.frozenAt),
        [null, null],
        "008 adds frozen_at: none was frozen",
      );
      assert.deepEqual(
        (await store.clusters.list("1")).map((r) => r.id),
        ["old1"],
      );
    } finally {
      await store.close();
    }
  });
});
