import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { Agent } from "node:https";
import { createServer, connect as netConnect, type Server } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { after, before, describe, it } from "node:test";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TempkubeError } from "../util/errors.js";
import { freePort } from "../util/net.js";
import { fetchGatewayActivity, fetchGatewayMetrics } from "./control-client.js";
import {
  clusterHostname,
  gatewayCaKeyPath,
  gatewayCaPath,
  GatewayPaths,
  serviceHostname,
  type GatewayConfig,
} from "./gateway-files.js";
import { ensureGateway, GATEWAY_COMPONENT, gatewayRunning, stopGateway } from "./gateway-process.js";
import {
  craftedClientHello,
  echoBackend,
  fakeCluster,
  getThroughGateway,
  httpGet,
  httpsGet,
  setSleeping,
  tlsOutcome,
  writeHttpRoute,
  writeRoute,
  type FakeCluster,
} from "./gateway-test-fixtures.js";
import { CertificateAuthority } from "../runtime/local/pki.js";
import { Supervisor } from "../runtime/local/supervisor.js";

const DOMAIN = "clusters.tempkube.local";

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Sends `request` on a TLS connection to the gateway (SNI `servername`) and returns all it answers until it closes. */
function rawHttps(port: number, servername: string, ca: string, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = tlsConnect({ host: "127.0.0.1", port, servername, ca: [ca] });
    let text = "";
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => (text += d));
    sock.once("secureConnect", () => sock.write(request));
    sock.once("error", reject);
    sock.once("close", () => resolve(text));
  });
}

function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile("curl", ["-sS", "--max-time", "20", ...args], (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as NodeJS.ErrnoException).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

function metricValue(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

/** The real gateway process, started by ensureGateway, in front of fake apiservers and backends on loopback. */
describe("gateway process", { timeout: 120_000 }, () => {
  const dataDirs: string[] = [];
  const servers: { close(): unknown }[] = [];
  let dataDir: string;
  let paths: GatewayPaths;
  let config: GatewayConfig;
  let alpha: FakeCluster;
  let beta: FakeCluster;
  let backendPort: number;

  async function newDataDir(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), "tkgw-"));
    dataDirs.push(dir);
    return dir;
  }

  async function newConfig(): Promise<GatewayConfig> {
    return {
      listen: { host: "127.0.0.1", port: await freePort() },
      httpListen: { host: "127.0.0.1", port: await freePort() },
      publicAddress: "127.0.0.1",
      clusterDomain: DOMAIN,
    };
  }

  before(async () => {
    dataDir = await newDataDir();
    paths = new GatewayPaths(dataDir);
    config = await newConfig();
    alpha = await fakeCluster("alpha1", DOMAIN);
    beta = await fakeCluster("beta22", DOMAIN);
    const backend = await echoBackend();
    backendPort = backend.port;
    servers.push(alpha.server, beta.server, backend.server);
    await writeRoute(dataDir, alpha, "running");
    await writeRoute(dataDir, beta, "running");
    await ensureGateway(dataDir, config);
  });

  after(async () => {
    for (const dir of dataDirs) await stopGateway(dir);
    for (const s of servers) s.close();
    for (const dir of dataDirs) await rm(dir, { recursive: true, force: true });
  });

  it("routes each cluster's name to its own apiserver, TLS untouched (the client certificate reaches it)", async () => {
    const a = await getThroughGateway(config.listen.port, clusterHostname("alpha1", DOMAIN), alpha);
    assert.deepEqual(a.json, { cluster: "alpha1", client: "user-of-alpha1", url: "/version" });
    const b = await getThroughGateway(config.listen.port, clusterHostname("beta22", DOMAIN), beta);
    assert.deepEqual(b.json, { cluster: "beta22", client: "user-of-beta22", url: "/version" });
    // DNS names are case-insensitive; the SNI of a client that capitalizes still routes.
    const upper = await getThroughGateway(config.listen.port, clusterHostname("ALPHA1", DOMAIN.toUpperCase()), alpha);
    assert.equal(upper.json.cluster, "alpha1");
  });

  it("keeps half-closed connections: a client that ends its side still gets the answer", async () => {
    const sock = tlsConnect({
      host: "127.0.0.1",
      port: config.listen.port,
      servername: clusterHostname("alpha1", DOMAIN),
      ca: [alpha.ca.certPem],
      cert: alpha.user.certPem,
      key: alpha.user.keyPem,
    });
    let text = "";
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => (text += d));
    await new Promise((r) => sock.once("secureConnect", r));
    sock.end("GET /half HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    await new Promise((r) => sock.once("close", r));
    assert.match(text, /^HTTP\/1\.1 200/);
    assert.match(text, /"cluster":"alpha1".*"url":"\/half"/);
  });

  it("closes at once what it will not route: unknown, no or foreign SNI, a stopped cluster; and counts them", async () => {
    const before = (await fetchGatewayMetrics(paths)) ?? "";
    assert.equal(await tlsOutcome(config.listen.port, clusterHostname("nosuch9", DOMAIN), alpha), "closed");
    assert.equal(await tlsOutcome(config.listen.port, undefined, alpha), "closed", "no SNI");
    assert.equal(await tlsOutcome(config.listen.port, `alpha1.${DOMAIN}.evil.example`, alpha), "closed");
    assert.equal(await tlsOutcome(config.listen.port, `x.alpha1.${DOMAIN}`, alpha), "closed");
    await writeRoute(dataDir, beta, "stopped");
    try {
      assert.equal(await tlsOutcome(config.listen.port, clusterHostname("beta22", DOMAIN), beta), "closed");
    } finally {
      await writeRoute(dataDir, beta, "running");
    }
    // Plain HTTP to the TLS port is not TLS.
    const plain = netConnect(config.listen.port, "127.0.0.1");
    plain.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    await new Promise((r) => plain.once("close", r));

    const after = (await fetchGatewayMetrics(paths)) ?? "";
    const delta = (reason: string) =>
      metricValue(after, `tempkube_gateway_refused_total{reason="${reason}"}`) -
      metricValue(before, `tempkube_gateway_refused_total{reason="${reason}"}`);
    assert.equal(delta("unknown_cluster"), 3);
    assert.equal(delta("no_sni"), 1);
    assert.equal(delta("stopped"), 1);
    assert.equal(delta("not_tls"), 1);
  });

  it("holds a connection for a sleeping cluster, asks for a wake, and proxies once it is running", async () => {
    await writeRoute(dataDir, beta, "stopped");
    await setSleeping(dataDir, "beta22", true);
    const metricsBefore = (await fetchGatewayMetrics(paths)) ?? "";
    let settled = false;
    const answer = getThroughGateway(config.listen.port, clusterHostname("beta22", DOMAIN), beta).finally(
      () => (settled = true),
    );
    await until("the wake file", () => existsSync(paths.wake("beta22")));
    assert.equal(settled, false, "the connection is held while the cluster sleeps");
    // What the server does on a wake: start the cluster (the runtime writes the route), remove the markers.
    await writeRoute(dataDir, beta, "running");
    await setSleeping(dataDir, "beta22", false);
    await rm(paths.wake("beta22"));
    assert.equal((await answer).json.cluster, "beta22");
    const metricsAfter = (await fetchGatewayMetrics(paths)) ?? "";
    assert.equal(
      metricValue(metricsAfter, "tempkube_gateway_wakes_requested_total") -
        metricValue(metricsBefore, "tempkube_gateway_wakes_requested_total"),
      1,
    );
  });

  it("reports activity and metrics per cluster over the control socket", async () => {
    const t0 = Date.now();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      await getThroughGateway(config.listen.port, clusterHostname("alpha1", DOMAIN), alpha, agent);
      const during = await fetchGatewayActivity(paths);
      assert.ok(during);
      assert.equal(during.clusters.alpha1.open, 1, "a kept-alive connection is open");
      assert.ok(during.clusters.alpha1.lastActiveAt >= t0);
      assert.ok(during.since < t0);
    } finally {
      agent.destroy();
    }
    await until("the connection to close", async () => (await fetchGatewayActivity(paths))?.clusters.alpha1.open === 0);
    const metrics = (await fetchGatewayMetrics(paths)) ?? "";
    assert.ok(metricValue(metrics, 'tempkube_gateway_connections_total{cluster="alpha1",protocol="tls"}') >= 3);
    assert.ok(metricValue(metrics, 'tempkube_gateway_bytes_total{cluster="alpha1",direction="in"}') > 0);
    assert.ok(metricValue(metrics, 'tempkube_gateway_bytes_total{cluster="alpha1",direction="out"}') > 0);
    assert.equal(metricValue(metrics, 'tempkube_gateway_open_connections{cluster="alpha1"}'), 0);
  });

  it("serves a fixed HTTP route by Host, with X-Forwarded headers", async () => {
    await writeHttpRoute(dataDir, { hostname: "static.example.test", target: `127.0.0.1:${backendPort}` });
    const res = await httpGet(config.httpListen.port, `Static.Example.Test:${config.httpListen.port}`, "/a?b=1");
    assert.equal(res.status, 200);
    const body = JSON.parse(res.text) as { url: string; headers: Record<string, string> };
    assert.equal(body.url, "/a?b=1");
    assert.equal(body.headers["x-forwarded-for"], "127.0.0.1");
    assert.equal(body.headers["x-forwarded-proto"], "http");
    assert.equal(body.headers["x-forwarded-host"], `Static.Example.Test:${config.httpListen.port}`);
    const unknown = await httpGet(config.httpListen.port, "nothing.example.test");
    assert.equal(unknown.status, 404);
    assert.match(unknown.text, /nothing\.example\.test/);
  });

  it("serves LoadBalancer Services by <service>.<namespace>.<id>.<domain>, never ClusterIP ones", async () => {
    alpha.services.set("default/web", {
      spec: {
        type: "LoadBalancer",
        ports: [
          { name: "metrics", port: 9 },
          { name: "http", port: backendPort },
        ],
      },
    });
    alpha.services.set("default/internal", { spec: { type: "ClusterIP", ports: [{ port: backendPort }] } });
    const down = await freePort();
    alpha.services.set("default/down", { spec: { type: "LoadBalancer", ports: [{ port: down, protocol: "TCP" }] } });

    const web = await httpGet(config.httpListen.port, serviceHostname("web", "default", "alpha1", DOMAIN), "/x");
    assert.equal(web.status, 200, web.text);
    assert.equal((JSON.parse(web.text) as { url: string }).url, "/x");
    assert.ok(alpha.serviceReaders.length > 0 && alpha.serviceReaders.every((cn) => cn === "tempkube-gateway"));

    const internal = await httpGet(config.httpListen.port, serviceHostname("internal", "default", "alpha1", DOMAIN));
    assert.equal(internal.status, 404);
    assert.match(internal.text, /internal\.default\.alpha1/);
    assert.match(internal.text, /ClusterIP, not LoadBalancer/);
    const missing = await httpGet(config.httpListen.port, serviceHostname("nope", "default", "alpha1", DOMAIN));
    assert.equal(missing.status, 404);
    const otherCluster = await httpGet(config.httpListen.port, serviceHostname("web", "default", "nosuch9", DOMAIN));
    assert.equal(otherCluster.status, 404);

    const bad = await httpGet(config.httpListen.port, serviceHostname("down", "default", "alpha1", DOMAIN));
    assert.equal(bad.status, 502);
    assert.match(bad.text, /ECONNREFUSED/);
  });

  it("wakes a sleeping cluster for an HTTP request too, holding the request", async () => {
    alpha.services.set("default/web", { spec: { type: "LoadBalancer", ports: [{ name: "http", port: backendPort }] } });
    await writeRoute(dataDir, alpha, "stopped");
    await setSleeping(dataDir, "alpha1", true);
    let settled = false;
    const answer = httpGet(
      config.httpListen.port,
      serviceHostname("web", "default", "alpha1", DOMAIN),
      "/woken",
    ).finally(() => (settled = true));
    await until("the wake file", () => existsSync(paths.wake("alpha1")));
    assert.equal(settled, false, "the request is held while the cluster sleeps");
    await writeRoute(dataDir, alpha, "running");
    await setSleeping(dataDir, "alpha1", false);
    await rm(paths.wake("alpha1"));
    const res = await answer;
    assert.equal(res.status, 200, res.text);
    assert.equal((JSON.parse(res.text) as { url: string }).url, "/woken");
  });

  it("proxies WebSocket upgrades to a LoadBalancer Service", async () => {
    alpha.services.set("default/ws", { spec: { type: "LoadBalancer", ports: [{ port: backendPort }] } });
    const sock = netConnect(config.httpListen.port, "127.0.0.1");
    const received: Buffer[] = [];
    sock.on("data", (d: Buffer) => received.push(d));
    sock.write(
      `GET /socket HTTP/1.1\r\nHost: ${serviceHostname("ws", "default", "alpha1", DOMAIN)}\r\n` +
        "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    );
    await until("the 101 answer", () => Buffer.concat(received).toString().includes("\r\n\r\n"));
    assert.match(Buffer.concat(received).toString(), /^HTTP\/1\.1 101/);
    received.length = 0;
    sock.write("ping through the gateway");
    await until("the echo", () => Buffer.concat(received).toString() === "ping through the gateway");
    sock.destroy();
  });

  it("wakes the cluster of a fixed route with a clusterId, counts it as its activity, and answers 503 while it is stopped", async () => {
    const host = `svc1.services.${DOMAIN}`;
    await writeHttpRoute(dataDir, { hostname: host, target: `127.0.0.1:${backendPort}`, clusterId: "alpha1" });
    const t0 = Date.now();
    const metricsBefore = (await fetchGatewayMetrics(paths)) ?? "";
    const ok = await httpGet(config.httpListen.port, host, "/first");
    assert.equal(ok.status, 200, ok.text);
    const activity = await fetchGatewayActivity(paths);
    assert.ok(activity && activity.clusters.alpha1.lastActiveAt >= t0, "the request is alpha1's activity");
    const metricsAfter = (await fetchGatewayMetrics(paths)) ?? "";
    const series = 'tempkube_gateway_connections_total{cluster="alpha1",protocol="http"}';
    assert.equal(metricValue(metricsAfter, series) - metricValue(metricsBefore, series), 1);

    try {
      // Stopped by its owner (not asleep): refused at once, as the LoadBalancer path does.
      await writeRoute(dataDir, alpha, "stopped");
      const stopped = await httpGet(config.httpListen.port, host);
      assert.equal(stopped.status, 503, stopped.text);
      assert.match(stopped.text, /alpha1 is stopped/);

      await setSleeping(dataDir, "alpha1", true);
      let settled = false;
      const answer = httpGet(config.httpListen.port, host, "/woken").finally(() => (settled = true));
      await until("the wake file", () => existsSync(paths.wake("alpha1")));
      assert.equal(settled, false, "the request is held while the cluster sleeps");
      await writeRoute(dataDir, alpha, "running");
      await setSleeping(dataDir, "alpha1", false);
      await rm(paths.wake("alpha1"));
      const res = await answer;
      assert.equal(res.status, 200, res.text);
      assert.equal((JSON.parse(res.text) as { url: string }).url, "/woken");
    } finally {
      await writeRoute(dataDir, alpha, "running");
      await setSleeping(dataDir, "alpha1", false);
      await rm(paths.wake("alpha1"), { force: true });
    }

    await writeHttpRoute(dataDir, { hostname: `gone.services.${DOMAIN}`, target: "127.0.0.1:1", clusterId: "nosuch9" });
    const gone = await httpGet(config.httpListen.port, `gone.services.${DOMAIN}`);
    assert.equal(gone.status, 404, gone.text);
    assert.match(gone.text, /no cluster nosuch9/);
  });

  it("sets X-Forwarded-Proto/Host itself: what a client claims in them is not passed on", async () => {
    await writeHttpRoute(dataDir, { hostname: "static.example.test", target: `127.0.0.1:${backendPort}` });
    const res = await httpGet(config.httpListen.port, "static.example.test", "/", {
      "x-forwarded-proto": "https",
      "x-forwarded-host": "bank.example",
      "x-forwarded-port": "443",
      "x-forwarded-for": "10.9.9.9",
    });
    const body = JSON.parse(res.text) as { headers: Record<string, string> };
    assert.equal(body.headers["x-forwarded-proto"], "http");
    assert.equal(body.headers["x-forwarded-host"], "static.example.test");
    assert.equal(body.headers["x-forwarded-port"], "80");
    assert.equal(body.headers["x-forwarded-for"], "10.9.9.9,127.0.0.1", "appended to, the gateway's entry last");
  });

  it("serves HTTPS for a route with the gateway's certificate, issued by the gateway CA (curl --cacert)", async () => {
    const caFile = gatewayCaPath(paths);
    assert.equal((await stat(gatewayCaKeyPath(paths))).mode & 0o777, 0o600);
    const ca = await readFile(caFile, "utf8");
    const host = `web.services.${DOMAIN}`;
    await writeHttpRoute(dataDir, {
      hostname: host,
      target: `127.0.0.1:${backendPort}`,
      tls: "gateway",
      clusterId: "alpha1",
    });

    const metricsBefore = (await fetchGatewayMetrics(paths)) ?? "";
    const res = await httpsGet(config.listen.port, host, ca, "/secure?x=1");
    assert.equal(res.status, 200, res.text);
    assert.equal(res.peerCertificate, `DNS:${host}`);
    const body = JSON.parse(res.text) as { url: string; headers: Record<string, string> };
    assert.equal(body.url, "/secure?x=1");
    assert.equal(body.headers["x-forwarded-proto"], "https");
    assert.equal(body.headers["x-forwarded-host"], host);
    const metricsAfter = (await fetchGatewayMetrics(paths)) ?? "";
    const series = 'tempkube_gateway_connections_total{cluster="alpha1",protocol="https"}';
    assert.equal(metricValue(metricsAfter, series) - metricValue(metricsBefore, series), 1);

    // Its cluster asleep: the handshake is answered at once, the request held until the wake.
    try {
      await writeRoute(dataDir, alpha, "stopped");
      await setSleeping(dataDir, "alpha1", true);
      let settled = false;
      const held = httpsGet(config.listen.port, host, ca, "/after-wake").finally(() => (settled = true));
      await until("the wake file", () => existsSync(paths.wake("alpha1")));
      assert.equal(settled, false, "the request is held while the cluster sleeps");
      await writeRoute(dataDir, alpha, "running");
      await setSleeping(dataDir, "alpha1", false);
      await rm(paths.wake("alpha1"));
      const woken = await held;
      assert.equal(woken.status, 200, woken.text);
      assert.equal((JSON.parse(woken.text) as { url: string }).url, "/after-wake");
    } finally {
      await writeRoute(dataDir, alpha, "running");
      await setSleeping(dataDir, "alpha1", false);
      await rm(paths.wake("alpha1"), { force: true });
    }

    // What a user does: curl with the CA, the name resolved to the gateway.
    const viaCurl = await curl([
      "--cacert",
      caFile,
      "--resolve",
      `${host}:${config.listen.port}:127.0.0.1`,
      `https://${host}:${config.listen.port}/curl`,
    ]);
    assert.equal(viaCurl.code, 0, viaCurl.stderr);
    assert.equal((JSON.parse(viaCurl.stdout) as { url: string }).url, "/curl");
    // The same certificate for another name of the CA's is not valid for this one.
    await writeHttpRoute(dataDir, {
      hostname: `other.services.${DOMAIN}`,
      target: `127.0.0.1:${backendPort}`,
      tls: "gateway",
    });
    const other = await httpsGet(config.listen.port, `other.services.${DOMAIN}`, ca);
    assert.equal(other.peerCertificate, `DNS:other.services.${DOMAIN}`);

    // A request for another host on this connection is not served with this name's certificate.
    const misdirected = await rawHttps(
      config.listen.port,
      host,
      ca,
      `GET / HTTP/1.1\r\nHost: ${serviceHostname("web", "default", "alpha1", DOMAIN)}\r\nConnection: close\r\n\r\n`,
    );
    assert.match(misdirected, /^HTTP\/1\.1 421 /);
    // Not even for a name that has an HTTPS route of its own: each name is served on its own connection.
    const otherName = await rawHttps(
      config.listen.port,
      host,
      ca,
      `GET / HTTP/1.1\r\nHost: other.services.${DOMAIN}\r\nConnection: close\r\n\r\n`,
    );
    assert.match(otherName, /^HTTP\/1\.1 421 /);
    const noHost = await rawHttps(config.listen.port, host, ca, "GET / HTTP/1.0\r\n\r\n");
    assert.match(noHost, /^HTTP\/1\.1 421 /);

    // WebSockets too.
    const ws = await new Promise<string>((resolve, reject) => {
      const sock = tlsConnect({ host: "127.0.0.1", port: config.listen.port, servername: host, ca: [ca] });
      let text = "";
      sock.setEncoding("utf8");
      sock.on("data", (d: string) => {
        text += d;
        if (text.includes("\r\n\r\n") && !text.endsWith("ping")) sock.write("ping");
        if (text.endsWith("ping")) {
          sock.destroy();
          resolve(text);
        }
      });
      sock.once("error", reject);
      sock.once("secureConnect", () =>
        sock.write(`GET /ws HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`),
      );
    });
    assert.match(ws, /^HTTP\/1\.1 101 [^]*ping$/);
  });

  it("serves HTTPS with a route's own certificate files, read again when they are replaced", async () => {
    const host = "own.example.test";
    const dir = join(dataDir, "test-certs");
    await mkdir(dir, { recursive: true });
    const tls = { certFile: join(dir, "own.crt"), keyFile: join(dir, "own.key") };
    const writePair = async (ca: CertificateAuthority) => {
      const pair = await ca.issue({ commonName: host, usage: "server", dnsNames: [host] });
      await writeFile(`${tls.keyFile}.tmp`, pair.keyPem);
      await writeFile(`${tls.certFile}.tmp`, pair.certPem);
      await rm(tls.keyFile, { force: true });
      await rm(tls.certFile, { force: true });
      await writeFile(tls.keyFile, pair.keyPem);
      await writeFile(tls.certFile, pair.certPem);
    };
    const first = await CertificateAuthority.create("tenant-ca-1");
    await writePair(first);
    await writeHttpRoute(dataDir, { hostname: host, target: `127.0.0.1:${backendPort}`, tls });
    const res = await httpsGet(config.listen.port, host, first.certPem, "/own");
    assert.equal(res.status, 200, res.text);
    assert.equal((JSON.parse(res.text) as { url: string }).url, "/own");

    const second = await CertificateAuthority.create("tenant-ca-2");
    await writePair(second);
    assert.equal((await httpsGet(config.listen.port, host, second.certPem)).status, 200);
    await assert.rejects(
      httpsGet(config.listen.port, host, first.certPem),
      /self-signed|unable to verify|certificate/i,
    );
  });

  it("gives no TLS to a name without an HTTPS route, keeps apiserver names for apiservers, survives bad hellos", async () => {
    const ca = await readFile(gatewayCaPath(paths), "utf8");
    await writeHttpRoute(dataDir, { hostname: "plain.example.test", target: `127.0.0.1:${backendPort}` });
    assert.equal(await tlsOutcome(config.listen.port, "plain.example.test", alpha), "closed", "a route without tls");
    assert.equal(await tlsOutcome(config.listen.port, "nothing.example.test", alpha), "closed", "no route");
    await writeHttpRoute(dataDir, {
      hostname: "sneaky.example.test",
      target: `127.0.0.1:${backendPort}`,
      tls: { certFile: `${paths.tlsDir}/../tls/ca.crt`, keyFile: gatewayCaKeyPath(paths) },
    });
    assert.equal(await tlsOutcome(config.listen.port, "sneaky.example.test", alpha), "closed", "a path with ..");
    await writeHttpRoute(dataDir, {
      hostname: "cakey.example.test",
      target: `127.0.0.1:${backendPort}`,
      tls: { certFile: gatewayCaPath(paths), keyFile: gatewayCaKeyPath(paths) },
    });
    await assert.rejects(
      httpsGet(config.listen.port, "cakey.example.test", ca),
      "the CA's own certificate is not the name's",
    );

    // A route file with an apiserver's name takes nothing over: the apiserver still answers.
    await writeHttpRoute(dataDir, {
      hostname: clusterHostname("alpha1", DOMAIN),
      target: `127.0.0.1:${backendPort}`,
      tls: "gateway",
    });
    try {
      const a = await getThroughGateway(config.listen.port, clusterHostname("alpha1", DOMAIN), alpha);
      assert.deepEqual(a.json, { cluster: "alpha1", client: "user-of-alpha1", url: "/version" });
    } finally {
      await rm(`${paths.httpRoutesDir}/${clusterHostname("alpha1", DOMAIN)}.json`);
    }

    // Hellos for an HTTPS route that no TLS stack can answer: refused, counted, nothing else affected.
    const host = `web.services.${DOMAIN}`;
    await writeHttpRoute(dataDir, { hostname: host, target: `127.0.0.1:${backendPort}`, tls: "gateway" });
    const before = (await fetchGatewayMetrics(paths)) ?? "";
    for (const hello of [
      craftedClientHello(host),
      Buffer.concat([craftedClientHello(host, [0x1301, 0xc02b]), Buffer.from("garbage after the hello")]),
      craftedClientHello(host, []),
    ]) {
      const answer = await new Promise<Buffer>((resolve) => {
        const sock = netConnect(config.listen.port, "127.0.0.1");
        const got: Buffer[] = [];
        sock.on("data", (d: Buffer) => got.push(d));
        sock.on("error", () => undefined);
        sock.on("close", () => resolve(Buffer.concat(got)));
        sock.write(hello);
      });
      // At most a TLS alert (content type 21), never a ServerHello (22).
      assert.ok(answer.length === 0 || answer[0] === 21, answer.toString("hex"));
    }
    const after = (await fetchGatewayMetrics(paths)) ?? "";
    const series = 'tempkube_gateway_refused_total{reason="tls_handshake"}';
    assert.equal(metricValue(after, series) - metricValue(before, series), 3);
    assert.equal((await httpsGet(config.listen.port, host, ca)).status, 200, "the gateway still serves");
    assert.equal(
      (await getThroughGateway(config.listen.port, clusterHostname("beta22", DOMAIN), beta)).json.cluster,
      "beta22",
    );
  });

  it("keeps a proxied connection open when the process that started the gateway is SIGKILLed", async () => {
    const dir = await newDataDir();
    const cfg = await newConfig();
    await writeRoute(dir, alpha, "running");
    const script =
      `const { ensureGateway } = await import(${JSON.stringify(new URL("./gateway-process.js", import.meta.url).href)});` +
      `await ensureGateway(${JSON.stringify(dir)}, ${JSON.stringify(cfg)});` +
      `console.log("ready"); setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    await until("the child to start the gateway", () => out.includes("ready"));
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await getThroughGateway(cfg.listen.port, clusterHostname("alpha1", DOMAIN), alpha, agent);
      assert.equal(first.json.cluster, "alpha1");
      child.kill("SIGKILL");
      await new Promise((r) => child.once("exit", r));
      const second = await getThroughGateway(cfg.listen.port, clusterHostname("alpha1", DOMAIN), alpha, agent);
      assert.equal(second.json.cluster, "alpha1");
      assert.equal(second.reusedSocket, true, "the same connection, through the same gateway process");
      assert.equal(await gatewayRunning(dir), true);
    } finally {
      agent.destroy();
      await stopGateway(dir);
    }
  });

  it("restarts on a changed configuration and leaves an unchanged one running", async () => {
    const sup = new Supervisor(paths.runDir, paths.logDir);
    const pid = await sup.pid(GATEWAY_COMPONENT, "child");
    await ensureGateway(dataDir, config);
    assert.equal(await sup.pid(GATEWAY_COMPONENT, "child"), pid, "same configuration: same process");
    const changed = { ...config, httpListen: { host: "127.0.0.1", port: await freePort() } };
    await ensureGateway(dataDir, changed);
    assert.notEqual(await sup.pid(GATEWAY_COMPONENT, "child"), pid);
    assert.deepEqual(JSON.parse(await readFile(paths.config, "utf8")), changed);
    assert.equal((await httpGet(changed.httpListen.port, "nothing.example.test")).status, 404);
    config = changed;
  });

  it("fails with a clear error naming the address and the flag when the port is in use", async () => {
    const dir = await newDataDir();
    const cfg = await newConfig();
    const squatter: Server = createServer();
    await new Promise<void>((r) => squatter.listen(cfg.httpListen.port, "127.0.0.1", r));
    try {
      await assert.rejects(ensureGateway(dir, cfg), (err: unknown) => {
        assert.ok(err instanceof TempkubeError);
        assert.equal(err.type, "invalid-input");
        assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${cfg.httpListen.port} \\(--gateway-http-listen\\)`));
        assert.match(err.message, /already in use/);
        assert.match(err.message, /gateway\.log/);
        return true;
      });
      assert.equal(await gatewayRunning(dir), false, "nothing left running");
    } finally {
      squatter.close();
    }
  });
});
