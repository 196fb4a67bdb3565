import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { refusedAs, storeContract } from "../testing/store-contract.js";
import { TestPostgres } from "../testing/postgres.js";
import { Store } from "./store.js";

/** The store's contract on a real PostgreSQL server (a throwaway one: testing/postgres.ts), and what only PostgreSQL has. */
describe("store on PostgreSQL", () => {
  let postgres: TestPostgres | undefined;
  let n = 0;
  before(async () => {
    postgres = await TestPostgres.start();
  });
  storeContract(async () => {
    assert.ok(postgres, "PostgreSQL did not start (see the before hook's error)");
    return Store.open(await postgres.createDatabase(`store_${n++}`));
  });
  // After the contract's hook has closed its stores.
  after(async () => {
    await postgres?.stop();
  });

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
      const { rows } = await client.query<{
        table_name: string;
        column_name: string;
        data_type: string;
        is_identity: string;
      }>(
        "select table_name, column_name, data_type, is_identity from information_schema.columns where table_schema = 'public' and table_name in ('clusters', 'tokens', 'outbox') and column_name in ('id', 'expires_at', 'revoked_at', 'idle_minutes', 'running_since', 'slept_at', 'system', 'frozen_at')",
      );
      const types = Object.fromEntries(
        rows.map((r) => [
          `${r.table_name}.${r.column_name}`,
          `${r.data_type}${r.is_identity === "YES" ? " identity" : ""}`,
        ]),
      );
      assert.deepEqual(types, {
        "clusters.id": "text",
        "clusters.expires_at": "bigint",
        "clusters.idle_minutes": "integer",
        "clusters.running_since": "bigint",
        "clusters.slept_at": "bigint",
        "clusters.system": "text",
        "clusters.frozen_at": "bigint",
        "tokens.id": "integer identity",
        "tokens.revoked_at": "bigint",
        "outbox.id": "integer identity",
      });
      const { rows: done } = await client.query<{ name: string }>("select name from kysely_migration order by name");
      assert.deepEqual(
        done.map((r) => r.name),
        [
          "001_clusters_and_tokens",
          "002_outbox",
          "003_cluster_generation",
          "004_token_limits_labels_pool",
          "005_cluster_sleep",
          "006_token_service_limits",
          "007_cluster_system",
          "008_cluster_freeze",
        ],
      );
    } finally {
      await client.end();
    }
  });

  it("adds the sleep columns to a database made before them, its clusters never sleeping", async () => {
    assert.ok(postgres);
    const url = await postgres.createDatabase("before_sleep");
    await (await Store.openPostgres(url)).close();
    const { Client } = (await import("pg")).default;
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      // The database as migration 004 left it, with one cluster in it.
      await client.query(
        "alter table clusters drop column idle_minutes, drop column running_since, drop column slept_at, drop column system, drop column frozen_at",
      );
      await client.query("alter table tokens drop column max_services, drop column max_service_minutes");
      await client.query(
        "delete from kysely_migration where name in ('005_cluster_sleep', '006_token_service_limits', '007_cluster_system', '008_cluster_freeze')",
      );
      await client.query(
        `insert into clusters (id, owner, name, spec, keep, notification_email, desired, phase, ttl_minutes, expires_at,
           created_at, updated_at, last_error, timings, generation, labels, pooled)
         values ('old1', '1', null, '{"id":"old1","kubernetesVersion":"1.34","privileged":false,"size":"1-small","workers":0}',
           0, null, 'running', 'running', 60, 1767229200000, 1767225600000, 1767225600000, null, '{}', 0, '{}', 0)`,
      );
    } finally {
      await client.end();
    }
    const store = await Store.openPostgres(url);
    try {
      const old = await store.clusters.get("old1");
      assert.deepEqual([old?.idleMinutes, old?.runningSince, old?.sleptAt, old?.frozenAt], [0, null, null, null]);
    } finally {
      await store.close();
    }
  });

  it("gives tenant tokens made before service limits the tenant defaults, admin tokens none", async () => {
    assert.ok(postgres);
    const url = await postgres.createDatabase("before_service_limits");
    const made = await Store.openPostgres(url);
    const admin = await made.tokens.create("admin", true, 1);
    const ci = await made.tokens.create("ci", false, 2);
    await made.close();
    const { Client } = (await import("pg")).default;
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      // The database as migration 005 left it.
      await client.query("alter table tokens drop column max_services, drop column max_service_minutes");
      await client.query("alter table clusters drop column system, drop column frozen_at");
      await client.query(
        "delete from kysely_migration where name in ('006_token_service_limits', '007_cluster_system', '008_cluster_freeze')",
      );
    } finally {
      await client.end();
    }
    const store = await Store.openPostgres(url);
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

  it("fails at once on a bad or unreachable database URL, naming it without its password", async () => {
    assert.ok(postgres);
    const stopped = await TestPostgres.start();
    const closedPort = stopped.port;
    await stopped.stop();
    const started = Date.now();
    await assert.rejects(
      Store.open(`postgres://tempkube:s3cret@127.0.0.1:${closedPort}/tempkube`),
      (e: Error & { type?: string }) => {
        assert.equal(e.type, "runtime");
        assert.match(
          e.message,
          new RegExp(
            `^cannot connect to PostgreSQL at postgres://tempkube:\\[redacted\\]@127\\.0\\.0\\.1:${closedPort}/tempkube: .*ECONNREFUSED`,
          ),
        );
        assert.doesNotMatch(e.message, /s3cret/);
        return true;
      },
    );
    assert.ok(Date.now() - started < 5000, "no waiting for a refused connection");
    await assert.rejects(
      Store.open(postgres.url.replace(/\/postgres$/, "/missing")),
      refusedAs("runtime", /cannot connect to PostgreSQL at .*\/missing: database "missing" does not exist/),
    );
    await assert.rejects(
      Store.open("postgres://tempkube:p@ss@[::1"),
      (e: Error & { type?: string }) =>
        e.type === "invalid-input" &&
        /database URL "postgres:\/\/tempkube:\[redacted\]@\[::1" is not a valid URL/.test(e.message) &&
        !e.message.includes("p@ss"),
    );
    await assert.rejects(
      Store.open("mysql://root:pw@db/tempkube"),
      refusedAs("invalid-input", /neither a postgres:\/\/ URL nor a SQLite file path/),
    );
  });
});
