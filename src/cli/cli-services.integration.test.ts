import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startServer, type RunningServer } from "../server/server.js";
import { parseServicesConfig } from "../services/presets.js";
import { tempkube } from "../testing/cli.js";
import { FakeEphemeronApi } from "../testing/fake-ephemeron-api.js";
import { FakeDriver } from "../testing/fakes.js";

/** `tempkube service …` as separate processes against a real server whose services cluster is in memory. */
describe("CLI: tempkube service (fake services cluster)", () => {
  let server: RunningServer;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const api = new FakeEphemeronApi();
  // The controller's part: a service made from an image named "slow" never serves, "bad" fails, others serve at once.
  const realCreate = api.create.bind(api);
  api.create = async (e) => {
    const made = await realCreate(e);
    const id = made.metadata.name;
    setTimeout(() => {
      if (e.spec.service.image === "bad") api.report(id, "PodReady", "False", "ErrImagePull", "no such image");
      else if (e.spec.service.image !== "slow") api.serve(id, `${id}.services.test`);
    }, 30);
    return made;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tk-cli-svc-"));
    server = await startServer({
      host: "127.0.0.1",
      port: 0,
      dataDir: dir,
      driver: new FakeDriver(),
      warmPool: 0,
      services: {
        getApi: async () => api,
        config: await parseServicesConfig("presets:\n  web: { image: busybox:1.37, port: 8080 }\n", "test"),
        gateway: { httpPort: 80 },
        waitTimeoutMs: 500,
      },
    });
    env = {
      TEMPKUBE_URL: server.url,
      TEMPKUBE_TOKEN: (await readFile(server.adminTokenFile, "utf8")).trim(),
      TEMPKUBE_LOG_LEVEL: "warn",
    };
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("creates (waiting for the URL), lists, gets, extends and deletes", async () => {
    const created = await tempkube(
      ["service", "create", "--preset", "web", "--lifetime", "30m", "--wait", "-o", "json"],
      env,
    );
    assert.equal(created.code, 0, created.stderr);
    const s = JSON.parse(created.stdout);
    assert.equal(s.phase, "available");
    assert.equal(s.url, `http://${s.id}.services.test/`);

    const quick = await tempkube(["service", "create", "--image", "slow", "--port", "80"], env);
    assert.equal(quick.code, 0, quick.stderr);
    const slowId = quick.stdout.trim();
    assert.match(slowId, /^[0-9a-v]{20}$/);
    assert.match(quick.stderr, /on its way/);

    const list = await tempkube(["service", "list"], env);
    assert.match(list.stdout, /^ID\s+PHASE\s+URL\s+EXPIRES\s+IMAGE/);
    assert.match(list.stdout, new RegExp(`${s.id}\\s+available\\s+http://${s.id}\\.services\\.test/`));
    assert.match(list.stdout, new RegExp(`${slowId}\\s+pending`));
    assert.match((await tempkube(["service", "get", slowId], env)).stdout, /not serving yet/);

    const extended = await tempkube(["service", "extend", s.id, "--lifetime", "2h", "-o", "json"], env);
    assert.equal(extended.code, 0, extended.stderr);
    assert.ok(Math.abs(Date.parse(JSON.parse(extended.stdout).expirationTime) - (Date.now() + 2 * 3600_000)) < 10_000);

    const mailed = await tempkube(
      ["service", "create", "--preset", "web", "--notify-email", "dev@example.com", "-o", "json"],
      env,
    );
    assert.equal(mailed.code, 0, mailed.stderr);
    assert.equal(JSON.parse(mailed.stdout).notificationEmail, "dev@example.com");
    assert.equal(
      api.objects.get(JSON.parse(mailed.stdout).id)?.metadata.annotations?.["tempkube.dev/notification-email"],
      "dev@example.com",
    );

    const deleted = await tempkube(["service", "delete", s.id], env);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.match(deleted.stderr, /deleted/);
    assert.equal((await tempkube(["service", "get", s.id], env)).code, 3, "not found");
  });

  it("exits non-zero when a waited-for service fails or does not serve in time, and on bad flags", async () => {
    const bad = await tempkube(["service", "create", "--image", "bad", "--port", "80", "--wait"], env);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /failed: PodReady ErrImagePull \(no such image\)/);
    const slow = await tempkube(["service", "create", "--image", "slow", "--port", "80", "--wait"], env);
    assert.notEqual(slow.code, 0);
    assert.match(slow.stderr, /does not serve yet/);
    assert.equal((await tempkube(["service", "create", "--image", "x"], env)).code, 2);
    assert.equal((await tempkube(["service", "create", "--preset", "web", "--image", "x"], env)).code, 2);
    assert.equal((await tempkube(["service", "create", "--image", "x", "--port", "99999"], env)).code, 2);
    const badEmail = await tempkube(["service", "create", "--preset", "web", "--notify-email", "Dev <d@x.io>"], env);
    assert.equal(badEmail.code, 2);
    assert.match(badEmail.stderr, /--notify-email must be one plain address/);
    const unknown = await tempkube(["service", "create", "--preset", "nope"], env);
    assert.equal(unknown.code, 3);
    assert.match(unknown.stderr, /preset nope not found/);
    const limited = await tempkube(
      ["token", "create", "svc", "--max-services", "0", "--max-service-lifetime", "1h"],
      env,
    );
    assert.equal(limited.code, 0, limited.stderr);
    assert.match(limited.stderr, /services 0 for 60m/);
    const refused = await tempkube(["service", "create", "--preset", "web"], {
      ...env,
      TEMPKUBE_TOKEN: limited.stdout.trim(),
    });
    assert.equal(refused.code, 7);
    assert.match(refused.stderr, /maxServices/);
  });
});
