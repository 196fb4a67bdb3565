import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { writeImageArchive } from "../setup/image-archive.js";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { stopGateway } from "../gateway/gateway-process.js";
import { LocalRuntime } from "../runtime/local/local-runtime.js";
import { DEFAULT_KUBERNETES_MINOR } from "../setup/catalogue.js";
import { parseServicesConfig } from "../services/presets.js";
import { restCall } from "../testing/http.js";
import { OtherMachine } from "../testing/other-machine.js";
import { unlessRoot } from "../testing/root.js";
import { freePort } from "../util/net.js";
import { startServer, type RunningServer } from "./server.js";

/**
 * Ephemeral services as a backend uses them (issue 14): a tempkube server with its gateway,
 * `/v1/services` with a tempkube token and the ephemeron-compatible `/ephemeron` with `/auth`
 * JWTs; each service reached from another machine by its host name through the gateway.
 */
const PAGE = "served-by-tempkube";
const CONFIG = `
presets:
  web:
    image: busybox:1.35
    port: 8080
    command: ["sh", "-c", "mkdir -p /www && echo ${PAGE} > /www/index.html && exec httpd -f -p 8080 -h /www"]
    readinessProbe: { path: /index.html, periodSeconds: 1 }
apps:
  course: course-key-1
`;

describe(
  "ephemeral services through the server, end to end",
  { timeout: 12 * 60_000, skip: unlessRoot("real clusters") },
  () => {
    let dir: string;
    let runtime: LocalRuntime;
    let existing: string[] = [];
    let other: OtherMachine;
    let server: RunningServer | undefined;
    let admin: string;
    let tenant: string;
    let tlsPort: number;
    let httpPort: number;

    const start = async () =>
      startServer({
        host: "127.0.0.1",
        port: 0,
        dataDir: dir,
        warmPool: 0,
        servicesCluster: {
          kubernetesVersion: DEFAULT_KUBERNETES_MINOR,
          size: "1-small",
          workers: 0,
          privileged: false,
        },
        services: { config: await parseServicesConfig(CONFIG, "test config") },
        gateway: {
          listen: { host: other.hostAddress, port: tlsPort },
          httpListen: { host: other.hostAddress, port: httpPort },
          publicAddress: other.hostAddress,
          clusterDomain: "clusters.svc.test",
        },
      });
    const api = (token: string | undefined, method: string, path: string, body?: unknown) =>
      restCall(server!.url, token, method, path, body);
    /** What another machine gets for the service's host name through the gateway (status and body). */
    const fetchFromOther = async (host: string) => {
      const r = await other.exec("curl", [
        "-sS",
        "--max-time",
        "10",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        "--resolve",
        `${host}:${httpPort}:${other.hostAddress}`,
        `http://${host}:${httpPort}/`,
      ]);
      const lines = r.stdout.trimEnd().split("\n");
      return { status: Number(lines.pop()), body: lines.join("\n") };
    };
    const until = async (what: string, check: () => Promise<boolean>, timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      while (!(await check())) {
        assert.ok(Date.now() < deadline, `timed out: ${what}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };

    before(async () => {
      dir = await mkdtemp("/tmp/tks-");
      runtime = new LocalRuntime({ dataDir: dir });
      existing = await runtime.list();
      other = await OtherMachine.create("svcs", "198.51.102");
      tlsPort = await freePort();
      httpPort = await freePort();
      server = await start();
      admin = (await readFile(server.adminTokenFile, "utf8")).trim();
      tenant = String((await api(admin, "POST", "/v1/tokens", { name: "backend", maxClusters: 1 })).json.token);
    });
    after(async () => {
      await server?.close();
      await stopGateway(dir).catch(() => undefined);
      for (const id of await runtime.list())
        if (!existing.includes(id)) await runtime.destroy(id).catch(() => undefined);
      await other?.remove();
      await rm(dir, { recursive: true, force: true });
    });

    it("/v1/services: a preset serves its page to another machine; host is null until it serves; PATCH moves the expiry", async () => {
      // Without wait: answered at once (the services cluster is made by this first request).
      const made = await api(tenant, "POST", "/v1/services", { preset: "web", lifetimeMinutes: 10 });
      assert.equal(made.status, 201, made.text);
      const id = String(made.json.id);
      assert.match(id, /^[0-9a-v]{20}$/, "an xid");
      assert.equal(made.json.host, null, "not serving yet");

      // Then waited for: it answers once it serves.
      const waited = await api(tenant, "POST", "/v1/services?wait=true", { preset: "web", lifetimeMinutes: 10 });
      assert.equal(waited.status, 201, waited.text);
      assert.equal(waited.json.phase, "available", waited.text);
      const host = String(waited.json.host);
      assert.equal(host, `${waited.json.id}.${server!.servicesDomain}`);
      const page = await fetchFromOther(host);
      assert.equal(page.status, 200, page.body);
      assert.equal(page.body.trim(), PAGE);

      await until(
        "the first service serves",
        async () => (await api(tenant, "GET", `/v1/services/${id}`)).json.host !== null,
        90_000,
      );
      assert.equal((await fetchFromOther(`${id}.${server!.servicesDomain}`)).status, 200);

      const listed = (await api(tenant, "GET", "/v1/services")).json.items as { id: string }[];
      assert.deepEqual(listed.map((s) => s.id).sort(), [id, String(waited.json.id)].sort());

      const before = Date.now();
      const extended = await api(tenant, "PATCH", `/v1/services/${id}`, { lifetimeMinutes: 30 });
      assert.equal(extended.status, 200, extended.text);
      const expires = Date.parse(String(extended.json.expirationTime));
      assert.ok(Math.abs(expires - (before + 30 * 60_000)) < 5_000, extended.text);

      // Another token sees none of them and may touch none.
      const stranger = String((await api(admin, "POST", "/v1/tokens", { name: "stranger" })).json.token);
      assert.deepEqual((await api(stranger, "GET", "/v1/services")).json.items, []);
      assert.equal((await api(stranger, "DELETE", `/v1/services/${id}`)).status, 403);

      const deleted = await api(tenant, "DELETE", `/v1/services/${id}`);
      assert.equal(deleted.status, 204, deleted.text);
      await until(
        "the deleted service's route is gone",
        async () => (await fetchFromOther(`${id}.${server!.servicesDomain}`)).status === 404,
        15_000,
      );
    });

    it("a user's own image, loaded for every cluster with the images API, is served as a service", async () => {
      const archive = join(dir, "web.tar");
      await writeImageArchive(
        {
          reference: "registry.example.com/team/web:1.0",
          entries: [{ type: "file", path: "bin/busybox", content: await readFile("/bin/busybox"), mode: 0o755 }],
          entrypoint: [
            "/bin/busybox",
            "sh",
            "-c",
            "/bin/busybox mkdir -p /www && echo from-a-user-image > /www/index.html && exec /bin/busybox httpd -f -p 8080 -h /www",
          ],
        },
        archive,
      );
      const res = await fetch(`${server!.url}/v1/images?name=web.tar`, {
        method: "POST",
        headers: { authorization: `Bearer ${admin}`, "content-type": "application/x-tar" },
        body: await readFile(archive),
      });
      assert.equal(res.status, 200, await res.clone().text());
      const made = await api(tenant, "POST", "/v1/services?wait=true", {
        service: { image: "registry.example.com/team/web:1.0", port: 8080 },
        lifetimeMinutes: 5,
      });
      assert.equal(made.json.phase, "available", made.text);
      const page = await fetchFromOther(String(made.json.host));
      assert.equal(page.body.trim(), "from-a-user-image", JSON.stringify(page));
      assert.equal((await api(tenant, "DELETE", `/v1/services/${made.json.id}`)).status, 204);
    });

    it("a bad image is reported with the reason, not waited for in vain", async () => {
      const r = await api(tenant, "POST", "/v1/services?wait=true", {
        service: { image: "tempkube.local/no-such-image:1", port: 80, imagePullPolicy: "Never" },
        lifetimeMinutes: 5,
      });
      assert.equal(r.status, 201, r.text);
      assert.equal(r.json.phase, "failed", r.text);
      const reasons = (r.json.conditions as { reason?: string }[]).map((c) => c.reason);
      assert.ok(
        reasons.some((x) => x && /ErrImageNeverPull|ErrImagePull|ImagePullBackOff/.test(x)),
        r.text,
      );
    });

    it("/ephemeron with /auth tokens: each uid sees and touches only its own services", async () => {
      const auth = async (uid: string) => {
        const r = await api(undefined, "POST", "/ephemeron/auth", { app: "course", key: "course-key-1", uid });
        assert.equal(r.status, 200, r.text);
        return String(r.json.token);
      };
      assert.equal(
        (await api(undefined, "POST", "/ephemeron/auth", { app: "course", key: "wrong", uid: "a" })).status,
        401,
      );
      const alice = await auth("alice");
      const bob = await auth("bob");
      const made = await api(alice, "POST", "/ephemeron", { preset: "web", lifetimeMinutes: 5 });
      assert.equal(made.status, 202, made.text);
      assert.deepEqual(Object.keys(made.json).sort(), ["expirationTime", "id"]);
      const id = String(made.json.id);
      assert.equal((await api(bob, "GET", `/ephemeron/${id}`)).status, 403);
      assert.equal((await api(bob, "DELETE", `/ephemeron/${id}`)).status, 403);
      await until(
        "alice's service serves",
        async () => (await api(alice, "GET", `/ephemeron/${id}`)).json.host !== null,
        90_000,
      );
      const got = await api(alice, "GET", `/ephemeron/${id}`);
      assert.deepEqual(Object.keys(got.json).sort(), ["expirationTime", "host", "tls"]);
      assert.equal((await fetchFromOther(String(got.json.host))).body.trim(), PAGE);
      assert.equal((await api(alice, "DELETE", `/ephemeron/${id}`)).status, 204);
    });

    it("a 1-minute service is gone within 2 s of its expiry, also when it expired while the server was down", async () => {
      const live = await api(tenant, "POST", "/v1/services?wait=true", { preset: "web", lifetimeMinutes: 1 });
      assert.equal(live.json.phase, "available", live.text);
      const down = await api(tenant, "POST", "/v1/services?wait=true", { preset: "web", lifetimeMinutes: 1 });
      assert.equal(down.json.phase, "available", down.text);
      const gone = async (id: string) =>
        (await api(admin, "GET", `/v1/services/${id}`)).status === 404 &&
        (await fetchFromOther(`${id}.${server!.servicesDomain}`)).status === 404;

      // The first expires with the server running.
      const liveExpiry = Date.parse(String(live.json.expirationTime));
      await new Promise((r) => setTimeout(r, Math.max(0, liveExpiry - Date.now() - 1_000)));
      await until("the running server's service expired", () => gone(String(live.json.id)), 15_000);
      const lateMs = Date.now() - liveExpiry;
      assert.ok(lateMs <= 2_000, `gone ${lateMs} ms after its expiry`);

      // The second expires while the server (and its controllers) are down.
      await server!.close();
      server = undefined;
      const downExpiry = Date.parse(String(down.json.expirationTime));
      await new Promise((r) => setTimeout(r, Math.max(0, downExpiry - Date.now() + 1_000)));
      const restarted = Date.now();
      server = await start();
      await until("the service that expired while down is gone", () => gone(String(down.json.id)), 15_000);
      console.log(`expiry: ${lateMs} ms late with the server up; gone ${Date.now() - restarted} ms after a restart`);
    });
  },
);
