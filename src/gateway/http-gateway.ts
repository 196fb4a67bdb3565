import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { createProxyServer } from "http-proxy-3";
import { KEEPALIVE_DELAY_MS, type GatewayContext } from "./gateway-context.js";
import { CLUSTER_ID, readHttpRoute } from "./route-reader.js";
import { ServiceLookup } from "./service-lookup.js";
import { runningRoute } from "./wake-hold.js";

/** A DNS label, as Kubernetes names Services and namespaces (RFC 1123). */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

type Resolved =
  { kind: "target"; target: string; clusterId?: string } | { kind: "error"; status: number; message: string };

/**
 * HTTP by Host name: a fixed route (`http-routes/<hostname>.json`) first, else
 * `<service>.<namespace>.<id>.<cluster domain>` to that cluster's LoadBalancer Service, waking
 * a sleeping cluster first. Only LoadBalancer Services are reachable: a ClusterIP Service is
 * internal by its owner's choice, and the gateway must not widen it.
 */
export function createHttpGateway(ctx: GatewayContext): Server {
  const lookup = new ServiceLookup();
  const proxy = createProxyServer({ xfwd: true, ws: true });
  // Errors of a proxied request go to its callback; anything else (a socket failing later) is logged, never thrown.
  proxy.on("error", (err: Error) => ctx.log.debug({ err }, "HTTP proxy error"));
  const server = createServer({ keepAlive: true, keepAliveInitialDelay: KEEPALIVE_DELAY_MS });

  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const host = hostOf(req);
    const closed = new AbortController();
    res.once("close", () => closed.abort());
    resolve(ctx, lookup, host, closed.signal)
      .then((r) => {
        if (r.kind === "error") return plain(res, r.status, r.message);
        const started = { in: req.socket.bytesRead, out: req.socket.bytesWritten };
        const cluster = r.clusterId ?? "";
        track(ctx, r.clusterId, "http", () => {
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
    socket.on("error", () => undefined);
    const closed = new AbortController();
    socket.once("close", () => closed.abort());
    resolve(ctx, lookup, host, closed.signal)
      .then((r) => {
        if (r.kind === "error") return rejectUpgrade(socket, r.status, r.message);
        const cluster = r.clusterId ?? "";
        track(ctx, r.clusterId, "http", () => {
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

async function resolve(ctx: GatewayContext, lookup: ServiceLookup, host: string, gone: AbortSignal): Promise<Resolved> {
  const notFound = (why: string): Resolved => {
    ctx.metrics.refuse("bad_host");
    return { kind: "error", status: 404, message: `no route for host ${JSON.stringify(host)}: ${why}` };
  };
  if (!host) return notFound("the request has no Host header");
  const fixed = await readHttpRoute(ctx.paths, host);
  if (fixed) return { kind: "target", target: fixed.target };

  const suffix = `.${ctx.config.clusterDomain.toLowerCase()}`;
  if (!host.endsWith(suffix)) return notFound(`not a name under ${ctx.config.clusterDomain}`);
  const parts = host.slice(0, -suffix.length).split(".");
  if (parts.length !== 3) return notFound(`expected <service>.<namespace>.<cluster id>${suffix}`);
  const [service, namespace, clusterId] = parts;
  if (!CLUSTER_ID.test(clusterId) || !DNS_LABEL.test(service) || !DNS_LABEL.test(namespace))
    return notFound(`expected <service>.<namespace>.<cluster id>${suffix}`);

  const outcome = await runningRoute(ctx, clusterId, gone);
  if (outcome.kind === "abandoned") return { kind: "error", status: 499, message: "client went away" };
  if (outcome.kind === "refused") {
    ctx.metrics.refuse(outcome.reason);
    const status = outcome.reason === "wake_timeout" ? 504 : outcome.reason === "stopped" ? 503 : 404;
    return { kind: "error", status, message: `${host}: ${outcome.detail}` };
  }
  const target = await lookup.lookup(outcome.route, namespace, service);
  if (target.kind === "not-served") return notFound(target.why);
  return { kind: "target", target: `${outcome.route.nodeAddress}:${target.port}`, clusterId };
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
