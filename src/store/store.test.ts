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
});
