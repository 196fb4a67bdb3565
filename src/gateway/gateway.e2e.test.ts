import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { LocalRuntime } from "../runtime/local/local-runtime.js";
import { defaultRelease } from "../setup/catalogue.js";
import { kubernetesBinary } from "../setup/installer.js";
import { BIN } from "../testing/cli.js";
import { OtherMachine } from "../testing/other-machine.js";
import { unlessRoot } from "../testing/root.js";
import { run } from "../util/exec.js";
import { freePort } from "../util/net.js";
import { DEFAULT_CLUSTER_DOMAIN } from "./gateway-files.js";
import { stopGateway } from "./gateway-process.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const WEB = `
apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec:
  replicas: 1
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      containers:
      - name: web
        image: busybox:1.35
        command: [sh, -c, "mkdir -p /www && echo hello-from-web > /www/index.html && echo web-started && exec httpd -f -v -p 8080 -h /www"]
---
apiVersion: v1
kind: Service
metadata: { name: web }
spec:
  type: LoadBalancer
  selector: { app: web }
  ports: [{ name: http, port: 80, targetPort: 8080 }]
`;

/** A pod writing into a local-path volume: its data must outlive a sleep. */
const KEEPER = `
apiVersion: v1
kind: PersistentVolumeClaim
metadata: { name: data }
spec: { accessModes: [ReadWriteOnce], resources: { requests: { storage: 16Mi } } }
---
apiVersion: v1
kind: Pod
metadata: { name: keeper }
spec:
  containers:
  - name: keeper
    image: busybox:1.35
    command: [sh, -c, "[ -f /data/note ] || echo kept-across-sleep > /data/note; exec sleep 100000"]
    volumeMounts: [{ name: data, mountPath: /data }]
  volumes: [{ name: data, persistentVolumeClaim: { claimName: data } }]
`;

/**
 * tempkube used as the network service it is (issue 12): a user on another machine (a
 * network namespace of this test's, routed to the host and nowhere else) talks HTTPS to the
 * API and reaches clusters and their LoadBalancer Services only through the gateway.
 */
describe(
  "from another machine, through the gateway",
  { skip: unlessRoot("real clusters"), timeout: 15 * 60_000 },
  () => {
    let other: OtherMachine;
    let dir: string;
    let server: ChildProcess | undefined;
    const serverLog: string[] = [];
    let apiPort: number;
    let gatewayPort: number;
    let httpPort: number;
    let token: string;
    let ca: string;
    const ids: string[] = [];
    const children: ChildProcess[] = [];
    const kubectlPath = kubernetesBinary(defaultRelease(), "kubectl");

    const api = () => `https://${other.hostAddress}:${apiPort}`;
    /** curl on the other machine; returns the body (throws on an HTTP error). */
    const curl = async (args: string[]) =>
      (await other.exec("curl", ["-sS", "--fail-with-body", "--max-time", "300", ...args])).stdout;
    const rest = async (method: string, path: string, body?: unknown) =>
      curl([
        "--cacert",
        ca,
        "-X",
        method,
        "-H",
        `Authorization: Bearer ${token}`,
        ...(body === undefined ? [] : ["-H", "content-type: application/json", "-d", JSON.stringify(body)]),
        `${api()}${path}`,
      ]);
    const kubeconfigs = new Map<string, string>();
    const kubectl = async (id: string, args: string[], timeoutMs = 120_000) =>
      (await other.exec(kubectlPath, ["--kubeconfig", kubeconfigs.get(id)!, ...args], { timeoutMs })).stdout;

    const startServer = async () => {
      server = spawn(
        BIN,
        [
          "server",
          "--listen",
          `${other.hostAddress}:${apiPort}`,
          "--gateway-listen",
          `${other.hostAddress}:${gatewayPort}`,
          "--gateway-http-listen",
          `${other.hostAddress}:${httpPort}`,
          "--data-dir",
          dir,
          "--warm-pool",
          "0",
        ],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      server.stdout?.on("data", (d: Buffer) => serverLog.push(d.toString()));
      server.stderr?.on("data", (d: Buffer) => serverLog.push(d.toString()));
      ca = join(dir, "api-tls", "server.crt");
      for (let i = 0; ; i++) {
        if (
          existsSync(ca) &&
          (await other.exec("curl", ["-sf", "--cacert", ca, `${api()}/healthz`]).then(
            () => true,
            () => false,
          ))
        )
          break;
        if (i > 300) assert.fail(`the server did not answer over HTTPS: ${serverLog.join("")}`);
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

    const create = async (body: Record<string, unknown>) => {
      const r = JSON.parse(await rest("POST", "/v1/clusters", { ttlMinutes: 30, ...body, wait: true })) as {
        id: string;
        phase: string;
      };
      ids.push(r.id);
      assert.equal(r.phase, "running", JSON.stringify(r));
      const kc = join(dir, `kc-${r.id}`);
      await writeFile(kc, await rest("GET", `/v1/clusters/${r.id}/kubeconfig`), { mode: 0o600 });
      kubeconfigs.set(r.id, kc);
      return r.id;
    };

    before(async () => {
      other = await OtherMachine.create("other", "198.51.100");
      dir = await mkdtemp("/tmp/tkg-");
      [apiPort, gatewayPort, httpPort] = [await freePort(), await freePort(), await freePort()];
      await startServer();
    });

    after(async () => {
      for (const c of children) c.kill("SIGKILL");
      if (server) await kill9();
      const runtime = new LocalRuntime({ dataDir: dir });
      for (const id of await runtime.list()) await runtime.destroy(id).catch(() => undefined);
      await stopGateway(dir);
      await other.remove();
      await rm(dir, { recursive: true, force: true });
    });

    it("hands out a kubeconfig that works from the other machine: apply, logs -f, exec, port-forward", async () => {
      const id = await create({});
      const kc = await readFile(kubeconfigs.get(id)!, "utf8");
      assert.match(kc, new RegExp(`server: https://${other.hostAddress.replaceAll(".", "\\.")}:${gatewayPort}`));
      assert.match(kc, new RegExp(`tls-server-name: ${id}\\.${DEFAULT_CLUSTER_DOMAIN.replaceAll(".", "\\.")}`));
      await writeFile(join(dir, "web.yaml"), WEB);
      await kubectl(id, ["apply", "-f", join(dir, "web.yaml")]);
      await kubectl(id, ["rollout", "status", "deployment/web", "--timeout=120s"]);

      const logs = other.spawn(kubectlPath, ["--kubeconfig", kubeconfigs.get(id)!, "logs", "-f", "deployment/web"]);
      children.push(logs);
      let logged = "";
      logs.stdout?.on("data", (d: Buffer) => (logged += d.toString()));
      for (let i = 0; i < 100 && !logged.includes("web-started"); i++) await sleep(100);
      assert.match(logged, /web-started/);

      assert.equal(
        (await kubectl(id, ["exec", "deployment/web", "--", "cat", "/www/index.html"])).trim(),
        "hello-from-web",
      );

      const localPort = 18080;
      const forward = other.spawn(kubectlPath, [
        "--kubeconfig",
        kubeconfigs.get(id)!,
        "port-forward",
        "deployment/web",
        `${localPort}:8080`,
      ]);
      children.push(forward);
      let forwarded = "";
      for (let i = 0; i < 100 && !forwarded; i++) {
        forwarded = await other.exec("curl", ["-sf", `http://127.0.0.1:${localPort}/`]).then(
          (r) => r.stdout,
          () => "",
        );
        if (!forwarded) await sleep(200);
      }
      assert.equal(forwarded.trim(), "hello-from-web");
      forward.kill("SIGTERM");
      // logs -f served these requests' access lines: the stream stayed open throughout.
      assert.ok(logs.exitCode === null, "logs -f still streaming");
    });

    it("serves a LoadBalancer Service over HTTP by its hostname, and refuses unknown names", async () => {
      const id = ids[0];
      const hostname = `web.default.${id}.${DEFAULT_CLUSTER_DOMAIN}`;
      let status = "";
      for (let i = 0; i < 100 && !status.includes(hostname); i++) {
        status = await kubectl(id, ["get", "service", "web", "-o", "jsonpath={.status.loadBalancer.ingress}"]);
        if (!status.includes(hostname)) await sleep(200);
      }
      assert.match(status, new RegExp(hostname.replaceAll(".", "\\.")));
      const body = await curl(["-H", `Host: ${hostname}`, `http://${other.hostAddress}:${httpPort}/`]);
      assert.equal(body.trim(), "hello-from-web");
      // A ClusterIP Service is never exposed.
      const missing = await other
        .exec("curl", [
          "-s",
          "-o",
          "/dev/null",
          "-w",
          "%{http_code}",
          "-H",
          `Host: kubernetes.default.${id}.${DEFAULT_CLUSTER_DOMAIN}`,
          `http://${other.hostAddress}:${httpPort}/`,
        ])
        .then((r) => r.stdout);
      assert.equal(missing, "404");
      // An unknown SNI gets no TLS at all (curl: SSL connect error), and so does none.
      const unknown = await other
        .exec("curl", [
          "-sk",
          "--resolve",
          `nosuch.${DEFAULT_CLUSTER_DOMAIN}:${gatewayPort}:${other.hostAddress}`,
          `https://nosuch.${DEFAULT_CLUSTER_DOMAIN}:${gatewayPort}/version`,
        ])
        .then(
          () => 0,
          (err: { code?: number; message: string }) => err.message,
        );
      assert.notEqual(unknown, 0, "an unknown SNI was routed");
    });

    it("keeps a watch streaming across a SIGKILL and restart of the tempkube server", async () => {
      const id = ids[0];
      const watch = other.spawn(kubectlPath, [
        "--kubeconfig",
        kubeconfigs.get(id)!,
        "get",
        "configmaps",
        "-w",
        "-o",
        "name",
      ]);
      children.push(watch);
      let seen = "";
      watch.stdout?.on("data", (d: Buffer) => (seen += d.toString()));
      await sleep(1000);
      await kill9();
      await kubectl(id, ["create", "configmap", "while-server-down"]);
      for (let i = 0; i < 100 && !seen.includes("while-server-down"); i++) await sleep(100);
      assert.match(seen, /configmap\/while-server-down/);
      await startServer();
      await kubectl(id, ["create", "configmap", "after-restart"]);
      for (let i = 0; i < 100 && !seen.includes("after-restart"); i++) await sleep(100);
      assert.match(seen, /configmap\/after-restart/);
      assert.equal(watch.exitCode, null, "the watch is still open");
      watch.kill("SIGTERM");
    });

    it("reaches two clusters by their own names; another cluster's name gets its own apiserver's refusal", async () => {
      const second = await create({ idleMinutes: 1 });
      const first = ids[0];
      for (const id of [first, second]) {
        const label = await kubectl(id, ["get", "nodes", "-o", "jsonpath={.items[0].metadata.labels.smek-cluster-id}"]);
        assert.equal(label, id);
      }
      // The second's credentials sent to the first's name: TLS to the first's apiserver, which
      // does not know that client certificate (its CA differs too, hence the skip-verify).
      const refusal = await other
        .exec(kubectlPath, [
          "--kubeconfig",
          kubeconfigs.get(second)!,
          "--tls-server-name",
          `${first}.${DEFAULT_CLUSTER_DOMAIN}`,
          "--insecure-skip-tls-verify",
          "get",
          "ns",
        ])
        .then(
          () => "",
          (err: Error) => err.message,
        );
      assert.match(refusal, /Unauthorized|must be logged in/);
    });

    it("puts an idle cluster to sleep (no process left) and wakes it on the next connection, data intact", async () => {
      const id = ids[1];
      await writeFile(join(dir, "keeper.yaml"), KEEPER);
      await kubectl(id, ["apply", "-f", join(dir, "keeper.yaml")]);
      await kubectl(id, ["wait", "--for=condition=Ready", "pod/keeper", "--timeout=120s"]);
      assert.equal((await kubectl(id, ["exec", "keeper", "--", "cat", "/data/note"])).trim(), "kept-across-sleep");
      const wentIdle = Date.now();
      let phase = "";
      while (phase !== "sleeping") {
        assert.ok(Date.now() - wentIdle < 150_000, `not asleep 150 s after the last connection (phase ${phase})`);
        await sleep(2000);
        phase = (JSON.parse(await rest("GET", `/v1/clusters/${id}`)) as { phase: string }).phase;
      }
      // `sleeping` is recorded (and the gateway told to hold connections) before the stop, so
      // that a connection arriving meanwhile wakes the cluster rather than being refused: the
      // processes go within the stop's own time.
      const runtime = new LocalRuntime({ dataDir: dir });
      let running: string[] = [];
      for (const until = Date.now() + 30_000; Date.now() < until; await sleep(200)) {
        running = (await runtime.status(id)).components.filter((c) => c.running).map((c) => c.name);
        if (running.length === 0) break;
      }
      assert.deepEqual(running, [], "a sleeping cluster runs nothing");
      const woke = Date.now();
      // The first connection wakes the cluster and is held until its apiserver is ready.
      // client-go gives a TLS handshake 10 s (TLSHandshakeTimeout, k8s.io/client-go/transport/
      // cache.go): on a busy machine a wake can take longer, and kubectl then gives up while
      // the wake goes on; a user's second try is answered. So is this one's.
      let answer = "";
      for (let attempt = 1; !answer; attempt++) {
        answer = await kubectl(id, ["get", "ns"], 180_000).catch((err: Error) => {
          if (attempt > 1 || !/TLS handshake timeout/.test(err.message)) throw err;
          process.stderr.write(`# wake took longer than kubectl's 10 s TLS handshake timeout; trying again\n`);
          return "";
        });
      }
      assert.match(answer, /kube-system/);
      const wakeMs = Date.now() - woke;
      assert.equal((JSON.parse(await rest("GET", `/v1/clusters/${id}`)) as { phase: string }).phase, "running");
      await kubectl(id, ["wait", "--for=condition=Ready", "pod/keeper", "--timeout=120s"]);
      assert.equal((await kubectl(id, ["exec", "keeper", "--", "cat", "/data/note"])).trim(), "kept-across-sleep");
      process.stderr.write(`# wake on connect → first answer: ${wakeMs} ms\n`);
    });
  },
);
