import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { ApiClient } from "../client/api-client.js";
import { startServer, type RunningServer } from "../server/server.js";
import { FakeEphemeronApi } from "../testing/fake-ephemeron-api.js";
import { FakeDriver } from "../testing/fakes.js";

const DIST = join(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * What a client command must never load (issue 15: `tempkube --help` took over a second
 * because every command's module imported the server, the store and the runtime). The set-up
 * catalogue is plain data and may load: `runtime create` shows its default version.
 */
const HEAVY =
  /\/dist\/(server|store|runtime|service|controller|host|bench|gateway\/gateway-process)\b|\/dist\/setup\/(?!catalogue\.js)|\/node_modules\/(fastify|@fastify|kysely|better-sqlite3|pg|pino|undici|yaml|@peculiar|prom-client|nodemailer|tar-stream|http-proxy-3)\//;

/** The CLI in its own process with a loader hook that writes down every module it loads. */
function modulesLoadedBy(args: string[], env: NodeJS.ProcessEnv, log: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ["--import", join(DIST, "testing", "record-module-loads.js"), join(DIST, "cli", "main.js"), ...args],
      { env: { ...process.env, ...env, TEMPKUBE_MODULE_LOG: log }, timeout: 60_000 },
      async (err, _stdout, stderr) => {
        if (err) return reject(new Error(`tempkube ${args.join(" ")}: ${err.message}\n${stderr}`));
        resolve((await readFile(log, "utf8")).split("\n").filter(Boolean));
      },
    );
  });
}

describe("client commands load no server, store or runtime code", () => {
  let server: RunningServer;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let id: string;
  let serviceId: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tkll-"));
    const services = new FakeEphemeronApi();
    server = await startServer({
      host: "127.0.0.1",
      port: 0,
      dataDir: dir,
      driver: new FakeDriver(),
      warmPool: 0,
      services: { getApi: async () => services, config: { presets: new Map(), apps: new Map() } },
    });
    const token = (await readFile(server.adminTokenFile, "utf8")).trim();
    serviceId = (
      await ApiClient.at(server.url, token).createService({
        service: { image: "busybox:1.37", port: 80 },
        lifetimeMinutes: 5,
      })
    ).id;
    id = (await ApiClient.at(server.url, token).request<{ id: string }>("POST", "/v1/clusters", { wait: true })).id;
    env = {
      TEMPKUBE_URL: server.url,
      TEMPKUBE_TOKEN: token,
      TEMPKUBE_CA_FILE: "",
      KUBECONFIG: join(dir, "kube", "config"),
    };
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  const cases: [string, () => string[]][] = [
    ["--help", () => ["--help"]],
    ["list", () => ["list"]],
    ["list -o json", () => ["list", "-o", "json"]],
    ["get <id>", () => ["get", id]],
    ["create --no-wait", () => ["create", "--no-wait", "--ttl", "10m"]],
    ["token whoami", () => ["token", "whoami"]],
    ["service list", () => ["service", "list"]],
    ["service get <id>", () => ["service", "get", serviceId]],
  ];
  for (const [name, args] of cases) {
    it(name, async () => {
      const loaded = await modulesLoadedBy(args(), env, join(dir, `modules-${name.replace(/\W+/g, "-")}.log`));
      // The hook saw the program: else an empty list would pass for a lean one.
      assert.ok(
        loaded.some((u) => u.endsWith("/dist/cli/commands/clusters.js")),
        loaded.join("\n"),
      );
      assert.ok(
        loaded.some((u) => u.includes("/node_modules/commander/")),
        loaded.join("\n"),
      );
      assert.deepEqual(
        loaded.filter((u) => HEAVY.test(u)),
        [],
        `tempkube ${args().join(" ")} loaded these; load them in the action that needs them`,
      );
    });
  }

  it("sees heavy modules when they do load (-o yaml loads yaml)", async () => {
    const loaded = await modulesLoadedBy(["get", id, "-o", "yaml"], env, join(dir, "modules-yaml.log"));
    assert.ok(
      loaded.some((u) => u.includes("/node_modules/yaml/")),
      loaded.join("\n"),
    );
  });
});
