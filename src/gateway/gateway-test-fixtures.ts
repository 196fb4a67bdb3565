import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { createServer as createHttpServer, request as httpRequest, type Server as HttpServer } from "node:http";
import { createServer as createHttpsServer, request as httpsRequest, type Agent, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { connect, type TLSSocket } from "node:tls";
import { renderKubeconfig } from "../runtime/local/kubeconfig.js";
import { CertificateAuthority, type KeyPairPem } from "../runtime/local/pki.js";
import { clusterHostname, GatewayPaths, type ClusterRoute, type HttpRoute } from "./gateway-files.js";

/** Test doubles for the gateway's integration test: fake apiservers (TLS, client certificates required) and backends. */

export interface FakeCluster {
  id: string;
  ca: CertificateAuthority;
  user: KeyPairPem;
  admin: KeyPairPem;
  server: Server;
  port: number;
  /** Services the fake apiserver knows: `<namespace>/<name>` → Service object. */
  services: Map<string, unknown>;
  /** Common names of the client certificates seen on Service reads. */
  serviceReaders: string[];
}

/**
 * A fake apiserver: HTTPS with the cluster's own CA, a client certificate required (as the
 * real one requires for these users). GET / answers which cluster and which client it saw;
 * GET /api/v1/namespaces/<ns>/services/<name> answers from `services`.
 */
export async function fakeCluster(id: string, clusterDomain: string): Promise<FakeCluster> {
  const ca = await CertificateAuthority.create(`${id}-ca`);
  const serving = await ca.issue({
    commonName: "kube-apiserver",
    usage: "server",
    dnsNames: [clusterHostname(id, clusterDomain)],
    ipAddresses: ["127.0.0.1"],
  });
  const user = await ca.issue({ commonName: `user-of-${id}`, usage: "client" });
  const admin = await ca.issue({ commonName: "tempkube-gateway", usage: "client" });
  const services = new Map<string, unknown>();
  const serviceReaders: string[] = [];
  const server = createHttpsServer(
    { cert: serving.certPem, key: serving.keyPem, ca: [ca.certPem], requestCert: true, rejectUnauthorized: true },
    (req, res) => {
      const client = (req.socket as TLSSocket).getPeerCertificate().subject?.CN;
      const m = req.url?.match(/^\/api\/v1\/namespaces\/([^/]+)\/services\/([^/?]+)$/);
      if (m) {
        serviceReaders.push(String(client));
        const svc = services.get(`${m[1]}/${m[2]}`);
        res.writeHead(svc ? 200 : 404, { "content-type": "application/json" });
        return res.end(JSON.stringify(svc ?? { kind: "Status", code: 404 }));
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ cluster: id, client, url: req.url }));
    },
  );
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { id, ca, user, admin, server, port: (server.address() as AddressInfo).port, services, serviceReaders };
}

async function writeWhole(path: string, text: string): Promise<void> {
  await mkdir(path.replace(/\/[^/]+$/, ""), { recursive: true });
  await writeFile(`${path}.tmp`, text);
  await rename(`${path}.tmp`, path);
}

/** Writes the cluster's route (and its admin kubeconfig) as the local runtime would. */
export async function writeRoute(dataDir: string, c: FakeCluster, phase: ClusterRoute["phase"]): Promise<void> {
  const paths = new GatewayPaths(dataDir);
  const adminKubeconfig = `${paths.root}/test-kubeconfigs/${c.id}.yaml`;
  await writeWhole(
    adminKubeconfig,
    renderKubeconfig({
      clusterName: c.id,
      contextName: c.id,
      userName: "admin",
      server: `https://127.0.0.1:${c.port}`,
      caPem: c.ca.certPem,
      certPem: c.admin.certPem,
      keyPem: c.admin.keyPem,
    }),
  );
  const route: ClusterRoute = {
    clusterId: c.id,
    phase,
    apiserver: `127.0.0.1:${c.port}`,
    nodeAddress: "127.0.0.1",
    adminKubeconfig,
  };
  await writeWhole(paths.route(c.id), JSON.stringify(route));
}

export async function writeHttpRoute(dataDir: string, route: HttpRoute): Promise<void> {
  await writeWhole(`${new GatewayPaths(dataDir).httpRoutesDir}/${route.hostname}.json`, JSON.stringify(route));
}

export async function setSleeping(dataDir: string, clusterId: string, sleeping: boolean): Promise<void> {
  const path = new GatewayPaths(dataDir).sleeping(clusterId);
  if (sleeping) await writeWhole(path, "");
  else await rm(path, { force: true });
}

/** GET through the TLS gateway as kubectl would: SNI = the cluster's name, the cluster's CA, a client certificate. */
export function getThroughGateway(
  gatewayPort: number,
  servername: string,
  c: FakeCluster,
  agent?: Agent,
): Promise<{ status: number; json: Record<string, unknown>; reusedSocket: boolean }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: "127.0.0.1",
        port: gatewayPort,
        servername,
        ca: [c.ca.certPem],
        cert: c.user.certPem,
        key: c.user.keyPem,
        path: "/version",
        agent: agent ?? false,
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (text += d));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            json: JSON.parse(text) as Record<string, unknown>,
            reusedSocket: req.reusedSocket,
          }),
        );
      },
    );
    req.on("error", reject);
    req.end();
  });
}

/**
 * A raw TLS handshake through the gateway: "closed" when the gateway drops the connection
 * before any TLS answer (what it does to a connection it will not route), else "handshake".
 */
export function tlsOutcome(gatewayPort: number, servername: string | undefined, c: FakeCluster): Promise<string> {
  return new Promise((resolve) => {
    const sock = connect({
      host: "127.0.0.1",
      port: gatewayPort,
      servername,
      ca: [c.ca.certPem],
      cert: c.user.certPem,
      key: c.user.keyPem,
    });
    sock.once("secureConnect", () => {
      sock.destroy();
      resolve("handshake");
    });
    sock.once("error", () => resolve("closed"));
    sock.once("close", () => resolve("closed"));
  });
}

/** A plain HTTP backend (a Service's pod): echoes method, URL and headers; echoes bytes after an Upgrade. */
export async function echoBackend(): Promise<{ server: HttpServer; port: number }> {
  const server = createHttpServer((req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ url: req.url, headers: req.headers }));
  });
  server.on("upgrade", (_req, socket) => {
    socket.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
    socket.pipe(socket);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, port: (server.address() as AddressInfo).port };
}

/** A plain HTTP GET to the HTTP gateway with the given Host. */
export function httpGet(
  port: number,
  host: string,
  path = "/",
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port, path, headers: { ...headers, host }, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** An HTTPS GET through the gateway's TLS port: SNI and Host the service's name, trusting `ca` only. */
export function httpsGet(
  port: number,
  servername: string,
  ca: string,
  path = "/",
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string; peerCertificate: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: "127.0.0.1", port, servername, ca: [ca], path, headers: { host: servername, ...headers }, agent: false },
      (res) => {
        const peer = (res.socket as TLSSocket).getPeerCertificate();
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (text += d));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, text, peerCertificate: String(peer.subjectaltname ?? "") }),
        );
      },
    );
    req.on("error", reject);
    req.end();
  });
}

/**
 * A hand-made ClientHello for `servername` offering only the cipher suites given (by default
 * just TLS_EMPTY_RENEGOTIATION_INFO_SCSV, so no handshake can succeed): what a broken or
 * hostile client sends. RFC 8446 §4.1.2, RFC 6066 §3.
 */
export function craftedClientHello(servername: string, cipherSuites: number[] = [0x00ff]): Buffer {
  const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
  const name = Buffer.from(servername, "latin1");
  const serverNameList = Buffer.concat([Buffer.from([0]), u16(name.length), name]);
  const sni = Buffer.concat([u16(0), u16(serverNameList.length + 2), u16(serverNameList.length), serverNameList]);
  const ciphers = Buffer.concat(cipherSuites.map(u16));
  const body = Buffer.concat([
    Buffer.from([3, 3]),
    Buffer.alloc(32, 7),
    Buffer.from([0]),
    u16(ciphers.length),
    ciphers,
    Buffer.from([1, 0]),
    u16(sni.length),
    sni,
  ]);
  const handshake = Buffer.concat([Buffer.from([1, 0, body.length >> 8, body.length & 0xff]), body]);
  return Buffer.concat([Buffer.from([22, 3, 1]), u16(handshake.length), handshake]);
}
