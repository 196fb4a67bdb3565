import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { TLSSocket } from "node:tls";
import { createProxyServer } from "http-proxy-3";
import { KEEPALIVE_DELAY_MS, type GatewayContext } from "./gateway-context.js";
import type { HttpRoute } from "./gateway-files.js";
import { CLUSTER_ID, readHttpRoute } from "./route-reader.js";
import { ServiceLookup } from "./service-lookup.js";
import { connectUpstream, RETRY_AFTER_WAKE_MS } from "./upstream-connect.js";
import { runningRoute, type RouteOutcome } from "./wake-hold.js";

/** A DNS label, as Kubernetes names Services and namespaces (RFC 1123). */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

type Resolved =
  { kind: "target"; target: string; clusterId?: string } | { kind: "error"; status: number; message: string };

/**
 * Set by the gateway alone: it is where clients connect, so whatever a client sent in these is
 * a claim of the client's (http-proxy's xfwd would append to X-Forwarded-Proto, giving
 * "https,http" for a plain request that claimed https, and keep a client's X-Forwarded-Host).
 * X-Forwarded-For is appended to, as proxies do: backends take its last entry as the client.
 */
const GATEWAY_SET_HEADERS = ["x-forwarded-proto", "x-forwarded-host", "x-forwarded-port"];

/**
 * HTTP by Host name: a fixed route (`http-routes/<hostname>.json`) first, else
 * `<service>.<namespace>.<id>.<cluster domain>` to that cluster's LoadBalancer Service, waking
 * a sleeping cluster first. Only LoadBalancer Services are reachable: a ClusterIP Service is
 * internal by its owner's choice, and the gateway must not widen it. A fixed route with a
 * `clusterId` wakes that cluster as well, and its requests count as that cluster's activity.
 *
 * The same server serves HTTPS connections the TLS gateway terminated (https-termination.ts):
 * there only the fixed route of the name the connection was made for (its SNI) is served.
 */
export function createHttpGateway(ctx: GatewayContext): Server {
  const lookup = new ServiceLookup();
  const proxy = createProxyServer({ xfwd: true, ws: true });
  // Errors of a proxied request go to its callback; anything else (a socket failing later) is logged, never thrown.
  proxy.on("error", (err: Error) => ctx.log.debug({ err }, "HTTP proxy error"));
  const server = createServer({ keepAlive: true, keepAliveInitialDelay: KEEPALIVE_DELAY_MS });

  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const host = hostOf(req);
    const sni = sniOf(req);
    const closed = new AbortController();
    res.once("close", () => closed.abort());
    resolve(ctx, lookup, host, sni, closed.signal)
      .then((r) => {
        if (r.kind === "error") return plain(res, r.status, r.message);
        const started = { in: req.socket.bytesRead, out: req.socket.bytesWritten };
        const cluster = r.clusterId ?? "";
        for (const h of GATEWAY_SET_HEADERS) delete req.headers[h];
        track(ctx, r.clusterId, sni === undefined ? "http" : "https", () => {
          return new Promise<void>((done) => {
            res.once("close", () => {
              ctx.metrics.bytes.inc({ cluster, direction: "in" }, Math.max(0, req.socket.bytesRead - started.in));
              ctx.metrics.bytes.inc({ cluster, direction: "out" }, Math.max(0, req.socket.bytesWritten - started.out));
              done();
            });
            proxy.web(req, res, { target: `http://${r.target}` }, (err: Error) => {
              ctx.metrics.refuse("backend_error");
              plain(res, 502, `bad gateway: ${host} → ${r.target}: ${err.message}`);
            });
          });
        });
      })
      .catch((err: unknown) => {
        ctx.log.error({ err, host }, "HTTP gateway request failed");
        plain(res, 502, `bad gateway: ${host}: ${(err as Error).message}`);
      });
  });

  server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const host = hostOf(req);
    const sni = sniOf(req);
    socket.on("error", () => undefined);
    const closed = new AbortController();
    socket.once("close", () => closed.abort());
    resolve(ctx, lookup, host, sni, closed.signal)
      .then((r) => {
        if (r.kind === "error") return rejectUpgrade(socket, r.status, r.message);
        const cluster = r.clusterId ?? "";
        for (const h of GATEWAY_SET_HEADERS) delete req.headers[h];
        track(ctx, r.clusterId, sni === undefined ? "http" : "https", () => {
          return new Promise<void>((done) => {
            socket.once("close", () => {
              ctx.metrics.bytes.inc({ cluster, direction: "in" }, socket.bytesRead);
              ctx.metrics.bytes.inc({ cluster, direction: "out" }, socket.bytesWritten);
              done();
            });
            proxy.ws(req, socket, head, { target: `http://${r.target}` }, (err: Error) => {
              ctx.metrics.refuse("backend_error");
              rejectUpgrade(socket, 502, `bad gateway: ${host} → ${r.target}: ${err.message}`);
            });
          });
        });
      })
      .catch((err: unknown) => rejectUpgrade(socket, 502, `bad gateway: ${host}: ${(err as Error).message}`));
  });
  return server;
}

function hostOf(req: IncomingMessage): string {
  return (req.headers.host ?? "").replace(/:\d+$/, "").replace(/\.$/, "").toLowerCase();
}

/** The SNI of a connection the gateway terminated TLS for (lower case); undefined on the plain HTTP port. */
function sniOf(req: IncomingMessage): string | undefined {
  return req.socket instanceof TLSSocket ? String(req.socket.servername || "").toLowerCase() : undefined;
}

async function resolve(
  ctx: GatewayContext,
  lookup: ServiceLookup,
  host: string,
  sni: string | undefined,
  gone: AbortSignal,
): Promise<Resolved> {
  const notFound = (why: string): Resolved => {
    ctx.metrics.refuse("bad_host");
    return { kind: "error", status: 404, message: `no route for host ${JSON.stringify(host)}: ${why}` };
  };
  if (sni !== undefined) {
    // The certificate was chosen for the SNI; a request for another name on this connection
    // would reach a host the certificate does not vouch for (and not over HTTPS by its route's choice).
    if (host !== sni) {
      ctx.metrics.refuse("misdirected");
      return {
        kind: "error",
        status: 421,
        message: `this connection is for ${JSON.stringify(sni)}; ${JSON.stringify(host)} needs a connection of its own`,
      };
    }
    const fixed = await readHttpRoute(ctx.paths, host);
    if (!fixed?.tls) {
      ctx.metrics.refuse("misdirected");
      return { kind: "error", status: 421, message: `${JSON.stringify(host)} is no longer served over HTTPS here` };
    }
    return fixedTarget(ctx, host, fixed, gone);
  }
  if (!host) return notFound("the request has no Host header");
  const fixed = await readHttpRoute(ctx.paths, host);
  if (fixed) return fixedTarget(ctx, host, fixed, gone);

  const suffix = `.${ctx.config.clusterDomain.toLowerCase()}`;
  if (!host.endsWith(suffix)) return notFound(`not a name under ${ctx.config.clusterDomain}`);
  const parts = host.slice(0, -suffix.length).split(".");
  if (parts.length !== 3) return notFound(`expected <service>.<namespace>.<cluster id>${suffix}`);
  const [service, namespace, clusterId] = parts;
  if (!CLUSTER_ID.test(clusterId) || !DNS_LABEL.test(service) || !DNS_LABEL.test(namespace))
    return notFound(`expected <service>.<namespace>.<cluster id>${suffix}`);

  const outcome = await runningRoute(ctx, clusterId, gone);
  if (outcome.kind !== "route") return refusal(ctx, host, outcome);
  const target = await lookup.lookup(outcome.route, namespace, service);
  if (target.kind === "not-served") return notFound(target.why);
  return { kind: "target", target: `${outcome.route.nodeAddress}:${target.port}`, clusterId };
}

/**
 * A fixed route's target; with `clusterId`, once that cluster runs (a sleeping one is woken,
 * the request held meanwhile, as for LoadBalancer Services). Right after a wake the backend
 * may not listen yet: its connect is retried for a few seconds before the request goes on.
 */
async function fixedTarget(ctx: GatewayContext, host: string, fixed: HttpRoute, gone: AbortSignal): Promise<Resolved> {
  if (fixed.clusterId === undefined) return { kind: "target", target: fixed.target };
  const outcome = await runningRoute(ctx, fixed.clusterId, gone);
  if (outcome.kind !== "route") return refusal(ctx, host, outcome);
  if (outcome.woken)
    await connectUpstream(fixed.target, RETRY_AFTER_WAKE_MS).then(
      (probe) => probe.destroy(),
      () => undefined, // the proxy's own connect fails too, and answers 502 with the cause
    );
  return { kind: "target", target: fixed.target, clusterId: fixed.clusterId };
}

/** Why a cluster's route cannot be used, as an HTTP answer: 503 stopped, 504 no wake in time, 404 no such cluster. */
function refusal(ctx: GatewayContext, host: string, outcome: Exclude<RouteOutcome, { kind: "route" }>): Resolved {
  if (outcome.kind === "abandoned") return { kind: "error", status: 499, message: "client went away" };
  ctx.metrics.refuse(outcome.reason);
  const status = outcome.reason === "wake_timeout" ? 504 : outcome.reason === "stopped" ? 503 : 404;
  return { kind: "error", status, message: `${host}: ${outcome.detail}` };
}

/** Counts a request or WebSocket as activity of its cluster for as long as `run` takes. */
function track(ctx: GatewayContext, clusterId: string | undefined, protocol: string, run: () => Promise<void>): void {
  const cluster = clusterId ?? "";
  ctx.metrics.connections.inc({ cluster, protocol });
  if (!clusterId) {
    run().catch(() => undefined);
    return;
  }
  ctx.activity.opened(clusterId);
  ctx.metrics.open.inc({ cluster });
  run()
    .catch(() => undefined)
    .finally(() => {
      ctx.activity.closed(clusterId);
      ctx.metrics.open.dec({ cluster });
    });
}

function plain(res: ServerResponse, status: number, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", connection: "close" });
  res.end(`${message}\n`);
}

function rejectUpgrade(socket: Socket, status: number, message: string): void {
  if (!socket.writable) return void socket.destroy();
  const body = `${message}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}\r\ncontent-type: text/plain; charset=utf-8\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}
