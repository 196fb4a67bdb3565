import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DEFAULT_TENANT_LIMITS } from "../core/quota.js";
import { Store } from "../store/store.js";
import { FakeClock } from "../testing/fakes.js";
import { refusedAs } from "../testing/store-contract.js";
import { TokenService } from "./token-service.js";

describe("token service (SQLite, fake clock)", () => {
  let dir: string;
  let store: Store;
  const clock = new FakeClock();
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tempkube-tokens-"));
    store = await Store.openSqlite(join(dir, "tokens.db"));
  });
  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("lets an admin make tokens, with the default tenant limits where none are given, stamped by the clock", async () => {
    const tokens = new TokenService(store, clock);
    const { identity: admin } = await store.tokens.create("admin", true, clock.now());
    const { info, secret } = await tokens.create(admin, { name: "ci", maxClusters: 1 });
    assert.deepEqual(info.limits, { ...DEFAULT_TENANT_LIMITS, maxClusters: 1 });
    assert.equal(info.createdAt, clock.now());
    assert.equal((await tokens.identify(secret))?.name, "ci");
    assert.equal((await tokens.self(info)).name, "ci");

    clock.advance(60_000);
    const revoked = await tokens.revoke(admin, info.id);
    assert.equal(revoked.revokedAt, clock.now());
    assert.equal(await tokens.identify(secret), undefined, "a revoked secret identifies nobody");
  });

  it("refuses a tenant every token operation but reading its own, naming the token", async () => {
    const tokens = new TokenService(store, clock);
    const { identity: tenant } = await store.tokens.create("tenant", false, clock.now());
    const notAdmin = refusedAs("forbidden", /^token "tenant" is not an admin token; only admins manage tokens$/);
    await assert.rejects(tokens.create(tenant, { name: "more" }), notAdmin);
    await assert.rejects(tokens.list(tenant), notAdmin);
    await assert.rejects(tokens.revoke(tenant, tenant.id), notAdmin);
    assert.equal((await tokens.self(tenant)).name, "tenant");
  });
});
