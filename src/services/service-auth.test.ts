import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile, chmod } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { decodeJwt, decodeProtectedHeader, SignJWT } from "jose";
import { FakeClock } from "../testing/fakes.js";
import { SERVICE_AUTH_SECRET_FILE, ServiceAuth } from "./service-auth.js";

const apps = new Map([["example", "apikey"]]);

describe("/auth tokens", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tk-auth-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("keeps its secret in the data dir (0600), made once and kept across restarts", async () => {
    const clock = new FakeClock();
    const first = await ServiceAuth.open(dir, apps, clock);
    const file = join(dir, SERVICE_AUTH_SECRET_FILE);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const secret = await readFile(file, "utf8");
    const answer = await first.issue({ app: "example", key: "apikey", uid: "alice" });
    assert.equal(answer.status, 200);
    const token = (answer.body as { token: string }).token;
    await chmod(file, 0o644);
    const second = await ServiceAuth.open(dir, apps, clock);
    assert.equal(await readFile(file, "utf8"), secret, "the same secret");
    assert.equal((await stat(file)).mode & 0o777, 0o600, "tightened again");
    assert.deepEqual(await second.verify(token), { sub: "alice.example", gid: null });
    const other = join(dir, "other");
    await (await import("node:fs/promises")).mkdir(other);
    await writeFile(join(other, SERVICE_AUTH_SECRET_FILE), "short\n");
    await assert.rejects(ServiceAuth.open(other, apps, clock), /no usable signing secret/);
  });

  it("signs HS256 with sub uid.app, gid gid.app or null, 5 minutes; checks them, with the reference's 60 s leeway", async () => {
    const clock = new FakeClock(Date.UTC(2026, 11, 1, 12));
    const auth = ServiceAuth.withSecret(new Uint8Array(32).fill(7), apps, clock);
    const { body } = await auth.issue({ app: "example", key: "apikey", uid: "u1", gid: "g1" });
    const token = (body as { token: string }).token;
    assert.deepEqual(decodeProtectedHeader(token), { alg: "HS256", typ: "JWT" });
    const claims = decodeJwt(token);
    assert.equal(claims.sub, "u1.example");
    assert.equal(claims.gid, "g1.example");
    assert.equal(claims.exp, Date.UTC(2026, 11, 1, 12, 5) / 1000);
    assert.deepEqual(await auth.verify(token), { sub: "u1.example", gid: "g1.example" });
    clock.advance(5 * 60_000 + 59_000);
    assert.ok(await auth.verify(token), "within the leeway");
    clock.advance(2_000);
    assert.equal(await auth.verify(token), undefined, "expired");
  });

  it("refuses what the reference refuses, with its words", async () => {
    const auth = ServiceAuth.withSecret(new Uint8Array(32).fill(1), apps);
    const unauthorized = { status: 401, body: { message: "Unauthorized" } };
    assert.deepEqual(await auth.issue({ app: "nope", key: "apikey", uid: "u" }), unauthorized);
    assert.deepEqual(await auth.issue({ app: "example", key: "wrong", uid: "u" }), unauthorized);
    const invalidUid = { status: 400, body: { message: "Invalid uid" } };
    // 63 − (len("example") + 1) = 55 characters at most: a label value `uid.app` fits in 63.
    assert.equal((await auth.issue({ app: "example", key: "apikey", uid: "a".repeat(55) })).status, 200);
    for (const uid of ["", "a".repeat(56), "a.b", "a-b", "ü", "a b"])
      assert.deepEqual(await auth.issue({ app: "example", key: "apikey", uid }), invalidUid, uid);
    assert.deepEqual(await auth.issue({ app: "example", key: "apikey", uid: "u", gid: "g.x" }), {
      status: 400,
      body: { message: "Invalid gid" },
    });
    // The key is checked before the uid, as there.
    assert.deepEqual(await auth.issue({ app: "example", key: "wrong", uid: "" }), unauthorized);
  });

  it("accepts no token it did not sign, nor one without exp or sub, nor another algorithm", async () => {
    const secret = new Uint8Array(32).fill(3);
    const auth = ServiceAuth.withSecret(secret, apps);
    const sign = (claims: Record<string, unknown>, key = secret) =>
      new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).sign(key);
    const exp = Math.floor(Date.now() / 1000) + 60;
    assert.ok(await auth.verify(await sign({ sub: "u.example", exp })));
    assert.equal(await auth.verify(await sign({ sub: "u.example", exp }, new Uint8Array(32).fill(4))), undefined);
    assert.equal(await auth.verify(await sign({ sub: "u.example" })), undefined, "no exp");
    assert.equal(await auth.verify(await sign({ exp })), undefined, "no sub");
    const none = `${Buffer.from('{"alg":"none"}').toString("base64url")}.${Buffer.from(JSON.stringify({ sub: "u.example", exp })).toString("base64url")}.`;
    assert.equal(await auth.verify(none), undefined);
    assert.equal(await auth.verify("garbage"), undefined);
  });
});
