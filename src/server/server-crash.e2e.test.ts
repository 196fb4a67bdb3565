import { freePort } from "../util/net.js";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { LocalRuntime } from "../runtime/local/local-runtime.js";
import { BIN } from "../testing/cli.js";
import { restCall } from "../testing/http.js";
import { unlessRoot } from "../testing/root.js";
import { smtpSink } from "../testing/smtp.js";
import { run } from "../util/exec.js";
import { stopGateway } from "../gateway/gateway-process.js";
import { unmountAll } from "../host/mounts.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * kill -9 of the server at the worst moments (while a cluster is being provisioned, while
 * expiry is being acted on), then a new server on the same data: it converges — no lost
 * cluster, nothing of the cluster left on the host after termination, no stuck phase, and
 * each notification mailed exactly once.
 */
describe(
  "server killed with SIGKILL converges after restart",
  { timeout: 10 * 60_000, skip: unlessRoot("the server boots real clusters") },
  () => {
    let runtime: LocalRuntime;
    let dir: string;
    let smtp: Awaited<ReturnType<typeof smtpSink>>;
    let port: number;
    let gatewayPorts: number[] = [];
    let server: ChildProcess | undefined;
    let token = "";
    let before_: string[] = [];
    const log: string[] = [];

    const startServer = async () => {
      server = spawn(
        BIN,
        [
          "server",
          "--listen",
          `127.0.0.1:${port}`,
          "--data-dir",
          dir,
          "--smtp-url",
          smtp.url,
          "--warning-minutes",
          "0.5",
          "--warm-pool",
          "0",
          // Ports of the test's own: the gateway it starts outlives the server (stopped in after()).
          "--gateway-listen",
          `127.0.0.1:${gatewayPorts[0]}`,
          "--gateway-http-listen",
          `127.0.0.1:${gatewayPorts[1]}`,
        ],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      server.stdout?.on("data", (d: Buffer) => log.push(d.toString()));
      server.stderr?.on("data", (d: Buffer) => log.push(d.toString()));
      for (let i = 0; i < 200; i++) {
        if (
          await fetch(`http://127.0.0.1:${port}/healthz`).then(
            (r) => r.ok,
            () => false,
          )
        )
          break;
        await sleep(100);
      }
      token = (await readFile(join(dir, "admin-token"), "utf8")).trim();
    };
    const kill9 = async () => {
      const s = server!;
      const exited = new Promise((r) => s.once("exit", r));
      s.kill("SIGKILL");
      await exited;
      server = undefined;
    };
    const api = async (method: string, path: string, body?: unknown) =>
      (await restCall(`http://127.0.0.1:${port}`, token, method, path, body)).json;
    const waitFor = async (what: string, ok: () => Promise<boolean>, timeoutMs: number, everyMs = 100) => {
      const deadline = Date.now() + timeoutMs;
      while (!(await ok())) {
        if (Date.now() > deadline)
          throw new Error(`timed out waiting for ${what}; server log:\n${log.join("").slice(-3000)}`);
        await sleep(everyMs);
      }
    };

    before(async () => {
      // --data-dir holds the clusters too (short: the kubelet's unix sockets live deep under it, within 108 bytes).
      dir = await mkdtemp("/tmp/tkc-");
      runtime = new LocalRuntime({ dataDir: dir });
      smtp = await smtpSink();
      port = await freePort();
      gatewayPorts = [await freePort(), await freePort()];
      before_ = await runtime.list();
    });
    after(async () => {
      if (server) await kill9().catch(() => undefined);
      // Whatever the servers made goes, even when the test failed half-way.
      for (const id of await runtime.list())
        if (!before_.includes(id)) await runtime.destroy(id).catch(() => undefined);
      await smtp.close();
      await stopGateway(dir);
      // A server killed in the middle of an image import leaves containerd's temporary mounts behind.
      await unmountAll(dir);
      await rm(dir, { recursive: true, force: true });
    });

    it("during create and during expiry", async () => {
      await startServer();
      const c = await api("POST", "/v1/clusters", {
        ttlMinutes: 1,
        notificationEmail: "owner@example.com",
        size: "1-small",
      });
      const id = c.id as string;
      // Killed while the runtime is half-way through making the cluster.
      await waitFor(
        "provisioning",
        async () => (await api("GET", `/v1/clusters/${id}`)).phase === "provisioning",
        10_000,
        20,
      );
      await sleep(1500);
      await kill9();

      await startServer();
      await waitFor(
        "running after restart",
        async () => (await api("GET", `/v1/clusters/${id}`)).phase === "running",
        120_000,
        250,
      );
      assert.deepEqual(
        (await runtime.list()).filter((x) => !before_.includes(x)),
        [id],
        "one cluster on the host, no orphan",
      );
      const status = await runtime.status(id);
      assert.ok(
        status.components.every((p) => p.running),
        "every component runs",
      );

      // Killed the moment expiry is recorded, while the runtime tears the cluster down.
      await waitFor(
        "expiry",
        async () => (await api("GET", `/v1/clusters/${id}`)).desired === "terminated",
        90_000,
        20,
      );
      await kill9();

      await startServer();
      await waitFor(
        "terminated after restart",
        async () => (await api("GET", `/v1/clusters/${id}`)).phase === "terminated",
        60_000,
        250,
      );
      assert.ok(!(await runtime.list()).includes(id), "nothing of the cluster on the host");
      const netns = await run("ip", ["netns", "list"]);
      assert.ok(!netns.stdout.includes(id), "no network namespace left");
      assert.ok(!existsSync(join(dir, "clusters", id)), "no files left");

      const subjects = () =>
        smtp.mails
          .filter((m) => m.body.includes(id))
          .map((m) => m.subject.replace(/ at .*/, ""))
          .sort();
      await waitFor("mail", async () => subjects().length >= 3, 30_000, 200);
      await sleep(1500);
      assert.deepEqual(
        subjects(),
        [`cluster ${id} expires`, `cluster ${id} is ready`, `cluster ${id} terminated`],
        "each event mailed once",
      );
      await kill9();
    });
  },
);
