import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Store } from "../store/store.js";
import { FakeDriver } from "../testing/fakes.js";
import { restCall } from "../testing/http.js";
import { TestPostgres } from "../testing/postgres.js";
import { startServer, type RunningServer } from "./server.js";

/** The real HTTP server on a PostgreSQL store (fake driver): what it writes is in PostgreSQL. */
describe("REST API on PostgreSQL (fake driver)", () => {
  let postgres: TestPostgres | undefined;
  let server: RunningServer | undefined;
  let url: string;
  let dir: string;
  let admin: string;

  const call = (token: string, method: string, path: string, body?: unknown) => {
    assert.ok(server);
    return restCall(server.url, token, method, path, body);
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tempkube-app-pg-"));
    postgres = await TestPostgres.start();
    url = await postgres.createDatabase("tempkube");
    server = await startServer({
      host: "127.0.0.1",
      port: 0,
      dataDir: dir,
      database: url,
      driver: new FakeDriver(),
      hostCapacity: 2,
    });
    admin = (await readFile(server.adminTokenFile, "utf8")).trim();
  });
  after(async () => {
    await server?.close();
    await postgres?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("creates and lists tokens and clusters over HTTP, kept in PostgreSQL", async () => {
    assert.equal(existsSync(join(dir, "tempkube.db")), false, "no SQLite file beside it");
    const made = await call(admin, "POST", "/v1/tokens", { name: "ci", maxClusters: 1 });
    assert.equal(made.status, 201);
    const ci = made.json.token as string;
    assert.deepEqual(
      (await call(admin, "GET", "/v1/tokens")).json.items.map((t: { name: string }) => t.name),
      ["admin", "ci"],
    );

    const created = await call(ci, "POST", "/v1/clusters", {
      size: "1-small",
      ttlMinutes: 10,
      labels: { team: "a" },
      wait: true,
    });
    assert.equal(created.status, 201);
    assert.equal(created.json.phase, "running");
    assert.equal(
      (await call(ci, "POST", "/v1/clusters", { size: "1-small", ttlMinutes: 10 })).status,
      403,
      "the quota holds",
    );
    const listed = await call(ci, "GET", "/v1/clusters");
    assert.deepEqual(
      listed.json.items.map((c: { id: string; labels: object }) => [c.id, c.labels]),
      [[created.json.id, { team: "a" }]],
    );

    // Another replica's view: the same database.
    const replica = await Store.openPostgres(url);
    try {
      const [record] = await replica.clusters.all();
      assert.equal(record.id, created.json.id);
      assert.equal(record.phase, "running");
      assert.equal(typeof record.expiresAt, "number");
      assert.deepEqual((await replica.tokens.identify(ci))?.limits.maxClusters, 1);
    } finally {
      await replica.close();
    }
  });

  it("refuses to start on an unreachable database, naming it without its password", async () => {
    assert.ok(postgres);
    const unreachable = url.replace("postgres@", "tempkube:s3cret@").replace(`:${postgres.port}/`, ":1/");
    await assert.rejects(
      startServer({ host: "127.0.0.1", port: 0, dataDir: dir, database: unreachable, driver: new FakeDriver() }),
      (e: Error) =>
        /^cannot connect to PostgreSQL at postgres:\/\/tempkube:\[redacted\]@127\.0\.0\.1:1\/tempkube: /.test(
          e.message,
        ) && !e.message.includes("s3cret"),
    );
  });
});
