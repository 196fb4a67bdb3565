import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import { decodeJwt } from "jose";
import { NOTIFICATION_EMAIL_ANNOTATION } from "../core/service-notifications.js";
import { ephemeronEvent } from "../services/ephemeron-controller.js";
import { CREATED_BY_ANNOTATION, GROUP_LABEL } from "../services/ephemeron-types.js";
import { parseServicesConfig } from "../services/presets.js";
import { FakeEphemeronApi } from "../testing/fake-ephemeron-api.js";
import { FakeDriver } from "../testing/fakes.js";
import { restCall } from "../testing/http.js";
import { TempkubeError } from "../util/errors.js";
import { startServer, type RunningServer } from "./server.js";

const CONFIG = `
presets:
  web:
    image: busybox:1.37
    port: 8080
    command: [httpd, -f, -p, "8080"]
    readinessProbe: { path: / }
apps:
  example: apikey
  other: otherkey
`;

/** /v1/services and /ephemeron over HTTP, with the services cluster's objects in memory (FakeEphemeronApi). */
describe("services API: /v1/services and the ephemeron-compatible /ephemeron (fake services cluster)", () => {
  let server: RunningServer;
  let dir: string;
  let admin: string;
  let api: FakeEphemeronApi;
  let apiError: Error | undefined;

  const call = (token: string | undefined, method: string, path: string, body?: unknown) =>
    restCall(server.url, token, method, path, body);
  const jwt = async (uid: string, app = "example", key = "apikey", gid?: string) =>
    (await call(undefined, "POST", "/ephemeron/auth", { app, key, uid, ...(gid ? { gid } : {}) })).json.token as string;
  const tenant = async (name: string, limits: Record<string, unknown> = {}) =>
    (await call(admin, "POST", "/v1/tokens", { name, ...limits })).json.token as string;
  /** What the controller does once the route answers: `host` set. */
  const serveSoon = (id: string, ms = 50) => setTimeout(() => api.serve(id, `${id}.services.tempkube.test`), ms);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tk-svcapp-"));
    api = new FakeEphemeronApi();
    server = await startServer({
      host: "127.0.0.1",
      port: 0,
      dataDir: dir,
      driver: new FakeDriver(),
      hostCapacity: 3,
      services: {
        getApi: async () => {
          if (apiError) throw apiError;
          return api;
        },
        config: await parseServicesConfig(CONFIG, "test"),
        gateway: { httpPort: 8080, httpsPort: 443 },
        waitTimeoutMs: 400,
      },
    });
    admin = (await readFile(server.adminTokenFile, "utf8")).trim();
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    api.objects.clear();
    apiError = undefined;
  });

  it("documents /v1/services and the tokens' service limits in /openapi.json", async () => {
    const doc = (await call(undefined, "GET", "/openapi.json")).json;
    for (const path of ["/v1/services", "/v1/services/{id}", "/ephemeron/auth", "/ephemeron/{id}"])
      assert.ok(doc.paths[path], `${path} is documented`);
    const create = doc.paths["/v1/services"].post;
    const body = create.requestBody.content["application/json"].schema;
    assert.deepEqual(body.required, ["lifetimeMinutes"]);
    assert.deepEqual(body.properties.service.required, ["image", "port"]);
    assert.ok(create.responses["503"], "the services cluster's absence is documented");
    assert.ok(doc.paths["/v1/services/{id}"].patch && doc.paths["/v1/services/{id}"].delete);
    const limits = doc.paths["/v1/tokens"].post.requestBody.content["application/json"].schema.properties;
    assert.ok(limits.maxServices && limits.maxServiceMinutes);
  });

  it("creates from a preset or a spec, shows, lists (own only; admin all), extends and deletes", async () => {
    const a = await tenant("a");
    const b = await tenant("b");
    const made = await call(a, "POST", "/v1/services", { preset: "web", lifetimeMinutes: 30 });
    assert.equal(made.status, 201, made.text);
    const id = made.json.id as string;
    assert.match(id, /^[0-9a-v]{20}$/);
    assert.deepEqual(
      { ...made.json, expirationTime: undefined, createdAt: undefined },
      {
        id,
        host: null,
        url: null,
        expirationTime: undefined,
        tls: false,
        phase: "pending",
        conditions: [],
        image: "busybox:1.37",
        port: 8080,
        createdBy: `token:${(await call(a, "GET", "/v1/tokens/self")).json.id}`,
        createdAt: undefined,
        notificationEmail: null,
      },
    );
    const expires = Date.parse(made.json.expirationTime);
    assert.ok(Math.abs(expires - (Date.now() + 30 * 60_000)) < 5_000, made.json.expirationTime);
    assert.equal(api.objects.get(id)?.metadata.annotations?.[CREATED_BY_ANNOTATION], made.json.createdBy);
    assert.deepEqual(api.objects.get(id)?.spec.service.command, ["httpd", "-f", "-p", "8080"]);

    const own = await call(a, "POST", "/v1/services", {
      service: { image: "registry.local/app:1", port: 3000, env: [{ name: "X", value: "1" }] },
      lifetimeMinutes: 5,
    });
    assert.equal(own.status, 201, own.text);
    await call(b, "POST", "/v1/services", { preset: "web", lifetimeMinutes: 5 });

    api.serve(id, `${id}.services.tempkube.test`);
    const got = await call(a, "GET", `/v1/services/${id}`);
    assert.equal(got.json.host, `${id}.services.tempkube.test`);
    assert.equal(got.json.url, `http://${id}.services.tempkube.test:8080/`);
    assert.equal(got.json.phase, "available");
    assert.deepEqual(
      got.json.conditions.map((c: { type: string; status: string }) => [c.type, c.status]),
      [
        ["PodReady", "True"],
        ["Available", "True"],
      ],
    );
    assert.deepEqual(
      (await call(a, "GET", "/v1/services")).json.items.map((s: { id: string }) => s.id).sort(),
      [id, own.json.id].sort(),
    );
    assert.equal((await call(b, "GET", "/v1/services")).json.items.length, 1);
    assert.equal((await call(admin, "GET", "/v1/services")).json.items.length, 3);

    const other = await call(b, "GET", `/v1/services/${id}`);
    assert.equal(other.status, 403);
    assert.match(other.json.message, /was not created by token "b"/);
    assert.equal((await call(b, "PATCH", `/v1/services/${id}`, { lifetimeMinutes: 60 })).status, 403);
    assert.equal((await call(b, "DELETE", `/v1/services/${id}`)).status, 403);
    assert.equal((await call(admin, "GET", `/v1/services/${id}`)).status, 200, "an admin sees every service");

    const extended = await call(a, "PATCH", `/v1/services/${id}`, { lifetimeMinutes: 120 });
    assert.equal(extended.status, 200);
    assert.ok(Math.abs(Date.parse(extended.json.expirationTime) - (Date.now() + 120 * 60_000)) < 5_000);
    assert.equal(api.objects.get(id)?.spec.expirationTime, extended.json.expirationTime);

    const deleted = await call(a, "DELETE", `/v1/services/${id}`);
    assert.equal(deleted.status, 204);
    assert.equal(deleted.text, "");
    assert.equal(api.objects.has(id), false);
    const gone = await call(a, "GET", `/v1/services/${id}`);
    assert.equal(gone.status, 404);
    assert.equal(gone.json.message, `ephemerons.qualified.io "${id}" not found`);
  });

  it("refuses bad requests with 400/404 naming the field, unauthenticated ones with 401", async () => {
    const a = await tenant("bad");
    const refused = async (body: unknown, status: number, re: RegExp) => {
      const r = await call(a, "POST", "/v1/services", body);
      assert.equal(r.status, status, r.text);
      assert.match(r.json.message, re);
    };
    await refused({ preset: "nope", lifetimeMinutes: 5 }, 404, /^preset nope not found$/);
    await refused({ lifetimeMinutes: 5 }, 400, /a preset or give a service, not both or neither/);
    await refused({ preset: "web", service: { image: "x", port: 1 }, lifetimeMinutes: 5 }, 400, /not both or neither/);
    await refused({ preset: "web" }, 400, /body must have required property 'lifetimeMinutes'/);
    await refused({ preset: "web", lifetimeMinutes: 0 }, 400, /body\/lifetimeMinutes must be >= 1/);
    await refused(
      { service: { image: "x" }, lifetimeMinutes: 5 },
      400,
      /body\/service must have required property 'port'/,
    );
    await refused(
      { service: { image: "x", port: 80, readinessProbe: { path: "no-slash" } }, lifetimeMinutes: 5 },
      400,
      /body\/service\/readinessProbe\/path must be a URL path/,
    );
    await refused(
      {
        service: { image: "x", port: 80, podLabels: { "app.kubernetes.io/name": "someone-else" } },
        lifetimeMinutes: 5,
      },
      400,
      /body\/service\/podLabels\/app\.kubernetes\.io\/name is reserved/,
    );
    await refused(
      { service: { image: "x", port: 80, tlsSecretName: "gateway-wildcard" }, lifetimeMinutes: 5 },
      403,
      /may not set body\/service\/tlsSecretName \(admin tokens only\)/,
    );
    await refused(
      { service: { image: "x", port: 80, ingressAnnotations: { a: "b" } }, lifetimeMinutes: 5 },
      403,
      /ingressAnnotations \(admin tokens only\)/,
    );
    assert.equal(
      (
        await call(admin, "POST", "/v1/services", {
          service: { image: "x", port: 80, tlsSecretName: "t" },
          lifetimeMinutes: 5,
        })
      ).status,
      201,
    );
    assert.equal((await call(a, "GET", "/v1/services/Not_An_Id")).status, 400);
    assert.equal((await call(undefined, "GET", "/v1/services")).status, 401);
    assert.equal(
      (await call(await jwt("u1"), "GET", "/v1/services")).status,
      401,
      "an /auth token is not a tempkube token",
    );
    assert.equal(api.objects.size, 1, "nothing made by the refused ones");
  });

  it("holds a token to maxServices and maxServiceMinutes (403 naming the limit), defaults 5 and 24 h", async () => {
    const defaults = await call(admin, "POST", "/v1/tokens", { name: "defaults" });
    assert.deepEqual([defaults.json.limits.maxServices, defaults.json.limits.maxServiceMinutes], [5, 1440]);
    const t = await tenant("small", { maxServices: 1, maxServiceMinutes: 60 });
    const long = await call(t, "POST", "/v1/services", { preset: "web", lifetimeMinutes: 61 });
    assert.equal(long.status, 403);
    assert.match(long.json.message, /at most 60 minutes \(maxServiceMinutes; lifetimeMinutes 61\)/);
    // Two at once: the count and the create are one step per caller, so only one gets through.
    const both = await Promise.all([
      call(t, "POST", "/v1/services", { preset: "web", lifetimeMinutes: 60 }),
      call(t, "POST", "/v1/services", { preset: "web", lifetimeMinutes: 60 }),
    ]);
    assert.deepEqual(both.map((r) => r.status).sort(), [201, 403]);
    const quota = both.find((r) => r.status === 403)!;
    assert.match(quota.json.message, /quota: token "small" may have 1 service\(s\) at once and has 1 \(maxServices\)/);
    const id = both.find((r) => r.status === 201)!.json.id;
    assert.equal((await call(t, "PATCH", `/v1/services/${id}`, { lifetimeMinutes: 90 })).status, 403);
    await call(t, "DELETE", `/v1/services/${id}`);
    assert.equal((await call(t, "POST", "/v1/services", { preset: "web", lifetimeMinutes: 60 })).status, 201);
    assert.equal(
      (await call(admin, "POST", "/v1/tokens", { name: "x", maxServiceMinutes: 7 * 24 * 60 + 1 })).status,
      400,
    );
  });

  it("with wait, answers once it serves; as it is after the wait timeout; at once when it fails", async () => {
    const t = await tenant("waiter");
    const realCreate = api.create.bind(api);
    let onCreate: (id: string) => void = () => undefined;
    api.create = async (e) => {
      const made = await realCreate(e);
      onCreate(made.metadata.name);
      return made;
    };
    try {
      onCreate = (id) => serveSoon(id);
      const started = Date.now();
      const served = await call(t, "POST", "/v1/services", { preset: "web", lifetimeMinutes: 5, wait: true });
      assert.equal(served.status, 201);
      assert.equal(served.json.phase, "available");
      assert.equal(served.json.host, `${served.json.id}.services.tempkube.test`);
      assert.ok(Date.now() - started < 400, "answered when it served, not at the timeout");

      onCreate = () => undefined;
      const slow = await call(t, "POST", "/v1/services?wait=true", { preset: "web", lifetimeMinutes: 5 });
      assert.equal(slow.status, 201);
      assert.deepEqual([slow.json.phase, slow.json.host], ["pending", null]);

      onCreate = (id) =>
        setTimeout(() => api.report(id, "PodReady", "False", "ImagePullBackOff", 'image "nope" not found'), 20);
      const failed = await call(t, "POST", "/v1/services", {
        service: { image: "nope", port: 80 },
        lifetimeMinutes: 5,
        wait: true,
      });
      assert.equal(failed.json.phase, "failed");
      assert.equal(failed.json.conditions[0].reason, "ImagePullBackOff");
    } finally {
      api.create = realCreate;
    }
  });

  it("answers 503 naming the cause when the services cluster is not available", async () => {
    apiError = new TempkubeError("capacity", "host capacity reached: 3 of 3 clusters are running");
    const r = await call(admin, "POST", "/v1/services", { preset: "web", lifetimeMinutes: 5 });
    assert.equal(r.status, 503);
    assert.match(r.json.message, /^the services cluster is not available: host capacity reached/);
    apiError = undefined;
    api.down = true;
    try {
      const down = await call(admin, "GET", "/v1/services");
      assert.equal(down.status, 503);
      assert.match(down.json.message, /services cluster: list failed/);
    } finally {
      api.down = false;
    }
  });

  it("takes a notificationEmail (REST, as a cluster's), writes it to the annotation, and the service's events mail it", async () => {
    const a = await tenant("mailer");
    const made = await call(a, "POST", "/v1/services", {
      preset: "web",
      lifetimeMinutes: 5,
      notificationEmail: "dev@example.com",
    });
    assert.equal(made.status, 201, made.text);
    const id = made.json.id as string;
    assert.equal(made.json.notificationEmail, "dev@example.com");
    assert.equal(api.objects.get(id)?.metadata.annotations?.[NOTIFICATION_EMAIL_ANNOTATION], "dev@example.com");
    assert.equal((await call(a, "GET", `/v1/services/${id}`)).json.notificationEmail, "dev@example.com");
    const doc = (await call(undefined, "GET", "/openapi.json")).json;
    const body = doc.paths["/v1/services"].post.requestBody.content["application/json"].schema;
    assert.equal(body.properties.notificationEmail.format, "email");

    // What the controller sends when the object serves and when it expires, from the object itself.
    const { clusterId } = await server.servicesCluster!.ensure();
    const host = `${id}.services.tempkube.test`;
    api.serve(id, host);
    await server.onServiceEvent(ephemeronEvent("available", clusterId, host, api.objects.get(id)!, Date.now()));
    await server.onServiceEvent(ephemeronEvent("expired", clusterId, host, api.objects.get(id)!, Date.now()));
    const mails = (await server.store.outbox.list(clusterId)).filter((m) => m.channel === "email");
    assert.deepEqual(
      mails.map((m) => [m.event, m.recipient]),
      [
        ["service-available", "dev@example.com"],
        ["service-expired", "dev@example.com"],
      ],
    );
    assert.match(
      String((mails[0].payload as { text: string }).text),
      new RegExp(`expires at ${made.json.expirationTime}`),
    );

    // Without one: nothing in the annotation, no email.
    const quiet = await call(a, "POST", "/v1/services", { preset: "web", lifetimeMinutes: 5 });
    assert.equal(quiet.json.notificationEmail, null);
    assert.equal(NOTIFICATION_EMAIL_ANNOTATION in (api.objects.get(quiet.json.id)?.metadata.annotations ?? {}), false);
  });

  it("refuses a notificationEmail that would never be mailed with a 400 naming the field", async () => {
    const a = await tenant("badmail");
    const refused = async (notificationEmail: unknown, re: RegExp) => {
      const r = await call(a, "POST", "/v1/services", { preset: "web", lifetimeMinutes: 5, notificationEmail });
      assert.equal(r.status, 400, r.text);
      assert.match(r.json.message, re);
    };
    await refused("not-an-address", /body\/notificationEmail must match format "email"/);
    await refused("Dev <dev@example.com>", /body\/notificationEmail must match format "email"/);
    await refused(42, /body\/notificationEmail must match format "email"/); // the schema coerces it to "42"
    await refused(`${"a".repeat(250)}@example.com`, /body\/notificationEmail must NOT have more than 254 characters/);
    // A list, header characters, quotes: the schema's email format refuses them too (EphemeralServices
    // checks again for callers other than REST: ephemeral-services.test.ts).
    await refused("a,b@example.com", /body\/notificationEmail must match format "email"/);
    await refused("a@b.c\r\nBcc: x@y.z", /body\/notificationEmail must match format "email"/);
    assert.equal(api.objects.size, 0, "nothing made by the refused ones");
  });

  describe("/ephemeron: the reference's API, same shapes", () => {
    it("POST /auth: a token for uid.app; 401 and 400 as the reference answers them", async () => {
      const ok = await call(undefined, "POST", "/ephemeron/auth", {
        app: "example",
        key: "apikey",
        uid: "alice",
        gid: "team1",
      });
      assert.equal(ok.status, 200);
      assert.deepEqual(Object.keys(ok.json), ["token"]);
      const claims = decodeJwt(ok.json.token);
      assert.deepEqual([claims.sub, claims.gid], ["alice.example", "team1.example"]);
      assert.ok(Math.abs((claims.exp as number) - (Date.now() / 1000 + 300)) < 5);
      const answer = async (body: unknown) => {
        const r = await call(undefined, "POST", "/ephemeron/auth", body);
        return [r.status, r.json];
      };
      assert.deepEqual(await answer({ app: "example", key: "wrong", uid: "alice" }), [
        401,
        { message: "Unauthorized" },
      ]);
      assert.deepEqual(await answer({ app: "nope", key: "apikey", uid: "alice" }), [401, { message: "Unauthorized" }]);
      assert.deepEqual(await answer({ app: "example", key: "apikey", uid: "a.b" }), [400, { message: "Invalid uid" }]);
      assert.deepEqual(await answer({ app: "example", key: "apikey", uid: "a", gid: "" }), [
        400,
        { message: "Invalid gid" },
      ]);
      const missing = await call(undefined, "POST", "/ephemeron/auth", { app: "example", key: "apikey" });
      assert.equal(missing.status, 400);
      assert.deepEqual(Object.keys(missing.json), ["message"]);
      assert.match(missing.json.message, /uid/);
    });

    it("POST / → 202 {id, expirationTime}; GET → {host|null, expirationTime, tls}; PATCH → {expirationTime}; DELETE → 204", async () => {
      const token = await jwt("alice", "example", "apikey", "team1");
      const created = await call(token, "POST", "/ephemeron/", { preset: "web", lifetimeMinutes: 30 });
      assert.equal(created.status, 202, created.text);
      assert.deepEqual(Object.keys(created.json).sort(), ["expirationTime", "id"]);
      const id = created.json.id as string;
      assert.match(id, /^[0-9a-v]{20}$/);
      const object = api.objects.get(id)!;
      assert.equal(object.metadata.annotations?.[CREATED_BY_ANNOTATION], "alice.example");
      assert.equal(object.spec.service.podLabels?.[GROUP_LABEL], "team1.example");
      assert.equal(object.spec.expirationTime, created.json.expirationTime);
      // Without the trailing slash too.
      assert.equal((await call(token, "POST", "/ephemeron", { preset: "web", lifetimeMinutes: 1 })).status, 202);

      const before = await call(token, "GET", `/ephemeron/${id}`);
      assert.deepEqual(before.json, { host: null, expirationTime: created.json.expirationTime, tls: false });
      api.serve(id, `${id}.services.tempkube.test`);
      assert.deepEqual((await call(token, "GET", `/ephemeron/${id}`)).json, {
        host: `${id}.services.tempkube.test`,
        expirationTime: created.json.expirationTime,
        tls: false,
      });
      const patched = await call(token, "PATCH", `/ephemeron/${id}`, { lifetimeMinutes: 90 });
      assert.equal(patched.status, 200);
      assert.deepEqual(Object.keys(patched.json), ["expirationTime"]);
      assert.ok(Math.abs(Date.parse(patched.json.expirationTime) - (Date.now() + 90 * 60_000)) < 5_000);
      const deleted = await call(token, "DELETE", `/ephemeron/${id}`);
      assert.deepEqual([deleted.status, deleted.text], [204, ""]);
      const gone = await call(token, "GET", `/ephemeron/${id}`);
      assert.deepEqual([gone.status, gone.json], [404, { message: `ephemerons.qualified.io "${id}" not found` }]);
    });

    it("a token for uid A gets 403 Forbidden on uid B's service; errors are {message}", async () => {
      const alice = await jwt("alice");
      const bob = await jwt("bob");
      const otherApp = await jwt("alice", "other", "otherkey");
      const id = (await call(alice, "POST", "/ephemeron/", { preset: "web", lifetimeMinutes: 10 })).json.id as string;
      for (const [method, body] of [
        ["GET", undefined],
        ["PATCH", { lifetimeMinutes: 100 }],
        ["DELETE", undefined],
      ] as const) {
        for (const intruder of [bob, otherApp]) {
          const r = await call(intruder, method, `/ephemeron/${id}`, body);
          assert.deepEqual([r.status, r.json], [403, { message: "Forbidden" }], method);
        }
      }
      assert.ok(api.objects.has(id), "still there");
      // A tempkube admin token may act on it; a tenant's may not.
      assert.equal((await call(admin, "GET", `/ephemeron/${id}`)).status, 200);
      const t = await tenant("eph-tenant");
      assert.deepEqual((await call(t, "GET", `/ephemeron/${id}`)).json, { message: "Forbidden" });
      const mine = await call(t, "POST", "/ephemeron/", { preset: "web", lifetimeMinutes: 10 });
      assert.equal(mine.status, 202);
      assert.match(api.objects.get(mine.json.id)!.metadata.annotations![CREATED_BY_ANNOTATION], /^token:\d+$/);
      // The tenant's limits hold here too.
      const long = await call(t, "POST", "/ephemeron/", { preset: "web", lifetimeMinutes: 100_000 });
      assert.equal(long.status, 400);
      assert.match(long.json.message, /^lifetime 100000 is invalid/);
      const overLimit = await call(t, "PATCH", `/ephemeron/${mine.json.id}`, { lifetimeMinutes: 2000 });
      assert.equal(overLimit.status, 403);
      assert.match(overLimit.json.message, /maxServiceMinutes/);
    });

    it("401 Unauthorized without a valid token; 404 for an unknown preset or path; 400 for a bad body", async () => {
      const unauthorized = { message: "Unauthorized" };
      const post = (token: string | undefined, body: unknown) => call(token, "POST", "/ephemeron/", body);
      assert.deepEqual((await post(undefined, { preset: "web", lifetimeMinutes: 1 })).json, unauthorized);
      assert.equal((await post(undefined, { preset: "web", lifetimeMinutes: 1 })).status, 401);
      assert.deepEqual((await post("tk_nonsense", { preset: "web", lifetimeMinutes: 1 })).json, unauthorized);
      assert.deepEqual((await post("a.b.c", { preset: "web", lifetimeMinutes: 1 })).json, unauthorized);
      const res = await fetch(`${server.url}/ephemeron/`, {
        method: "POST",
        headers: { authorization: await jwt("alice"), "content-type": "application/json" },
        body: JSON.stringify({ preset: "web", lifetimeMinutes: 1 }),
      });
      assert.equal(res.status, 401, "no Bearer prefix");

      const token = await jwt("alice");
      const unknown = await post(token, { preset: "nope", lifetimeMinutes: 1 });
      assert.deepEqual([unknown.status, unknown.json], [404, { message: "preset nope not found" }]);
      const bad = await post(token, { preset: "web", lifetimeMinutes: -1 });
      assert.equal(bad.status, 400);
      assert.deepEqual(Object.keys(bad.json), ["message"]);
      assert.equal((await post(token, { preset: "web" })).status, 400);
      const zero = await post(token, { preset: "web", lifetimeMinutes: 0 });
      assert.deepEqual([zero.status, zero.json.message.startsWith("lifetime 0 is invalid")], [400, true]);
      const path = await call(token, "GET", "/ephemeron/a/b");
      assert.deepEqual([path.status, path.json], [404, { message: "Not Found" }]);
      assert.equal(api.objects.size, 0);
    });

    it("allows any origin (CORS), answers preflights without a token, and GET /ephemeron is its health check", async () => {
      const preflight = await fetch(`${server.url}/ephemeron/abc`, {
        method: "OPTIONS",
        headers: { origin: "https://app.example", "access-control-request-method": "PATCH" },
      });
      assert.equal(preflight.status, 204);
      assert.equal(preflight.headers.get("access-control-allow-origin"), "*");
      assert.match(preflight.headers.get("access-control-allow-methods")!, /PATCH/);
      assert.match(preflight.headers.get("access-control-allow-headers")!, /authorization/);
      const refused = await fetch(`${server.url}/ephemeron/abc`, { headers: { origin: "https://app.example" } });
      assert.equal(refused.status, 401);
      assert.equal(
        refused.headers.get("access-control-allow-origin"),
        "*",
        "errors carry it too, so browsers can read them",
      );
      const health = await fetch(`${server.url}/ephemeron`);
      assert.deepEqual([health.status, await health.text()], [200, "OK"]);
      const cluster = await fetch(`${server.url}/v1/clusters`, { headers: { origin: "https://app.example" } });
      assert.equal(
        cluster.headers.get("access-control-allow-origin"),
        null,
        "only /ephemeron is open to other origins",
      );
    });
  });
});
