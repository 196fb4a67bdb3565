import { createServer, type Server, type Socket } from "node:net";
import { KEEPALIVE_DELAY_MS, type GatewayContext } from "./gateway-context.js";
import { clusterHostname } from "./gateway-files.js";
import { CLUSTER_ID } from "./route-reader.js";
import { MAX_SNI_BUFFER_BYTES, parseSni } from "./sni.js";
import type { HttpsTermination } from "./https-termination.js";
import { connectUpstream, RETRY_AFTER_WAKE_MS } from "./upstream-connect.js";
import { runningRoute } from "./wake-hold.js";

/** A client that sends no complete ClientHello within this long is dropped. */
export const CLIENT_HELLO_TIMEOUT_MS = 10_000;

/**
 * TLS passthrough by SNI: the ClientHello is read (not answered), the route of the cluster it
 * names is looked up, and the bytes go on to that cluster's apiserver untouched, so the client
 * certificate is checked by the apiserver itself. Only `<id>.<cluster domain>` exactly routes;
 * the id picks the route file and nothing else, so a connection never reaches another cluster.
 *
 * Any other name is closed at once, unless `https` terminates it: a fixed HttpRoute with `tls`
 * for exactly that name (ephemeral services). Apiserver names are decided first, so no route
 * file can take a cluster's name over.
 */
export function createTlsGateway(ctx: GatewayContext, https?: HttpsTermination): Server {
  return createServer({ allowHalfOpen: true }, (client) => {
    handleConnection(ctx, client, https).catch((err: unknown) => {
      ctx.log.error({ err }, "TLS gateway connection failed");
      client.destroy();
    });
  });
}

/** The cluster id an SNI names, or undefined (case-insensitive, as DNS names are). */
export function clusterIdOfSni(hostname: string, clusterDomain: string): string | undefined {
  const suffix = `.${clusterDomain.toLowerCase()}`;
  const name = hostname.toLowerCase();
  if (!name.endsWith(suffix)) return undefined;
  const id = name.slice(0, -suffix.length);
  return CLUSTER_ID.test(id) && clusterHostname(id, clusterDomain.toLowerCase()) === name ? id : undefined;
}

async function handleConnection(ctx: GatewayContext, client: Socket, https?: HttpsTermination): Promise<void> {
  const { metrics, log } = ctx;
  client.on("error", (err) => log.debug({ err }, "client socket error"));
  client.setKeepAlive(true, KEEPALIVE_DELAY_MS);
  const gone = new AbortController();
  client.once("close", () => gone.abort());

  const hello = await readClientHello(client);
  if (hello.kind !== "hostname") {
    if (hello.kind !== "gone") metrics.refuse(hello.kind === "none" ? "no_sni" : hello.kind);
    log.debug({ remote: client.remoteAddress, outcome: hello.kind }, "TLS connection refused");
    client.destroy();
    return;
  }
  const clusterId = clusterIdOfSni(hello.hostname, ctx.config.clusterDomain);
  if (!clusterId) {
    if (https && (await https.terminates(hello.hostname))) {
      if (client.destroyed) return;
      https.serve(client, hello.buffered);
      return;
    }
    metrics.refuse("unknown_cluster");
    log.debug({ remote: client.remoteAddress, sni: hello.hostname }, "TLS connection for a name that is no cluster's");
    client.destroy();
    return;
  }
  const outcome = await runningRoute(ctx, clusterId, gone.signal);
  if (outcome.kind !== "route") {
    if (outcome.kind === "refused") {
      metrics.refuse(outcome.reason);
      log.debug({ remote: client.remoteAddress, cluster: clusterId, reason: outcome.reason }, outcome.detail);
    }
    client.destroy();
    return;
  }

  ctx.activity.opened(clusterId);
  metrics.open.inc({ cluster: clusterId });
  metrics.connections.inc({ cluster: clusterId, protocol: "tls" });
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    ctx.activity.closed(clusterId);
    metrics.open.dec({ cluster: clusterId });
  };
  let upstream: Socket;
  try {
    upstream = await connectUpstream(outcome.route.apiserver, outcome.woken ? RETRY_AFTER_WAKE_MS : 0);
  } catch (err) {
    metrics.refuse("backend_error");
    log.warn({ err, cluster: clusterId, apiserver: outcome.route.apiserver }, "cannot reach the cluster's apiserver");
    client.destroy();
    close();
    return;
  }
  if (client.destroyed) {
    upstream.destroy();
    close();
    return;
  }
  pipeBothWays(client, upstream, hello.buffered, (direction, n) =>
    metrics.bytes.inc({ cluster: clusterId, direction }, n),
  ).then(close);
}

type HelloResult =
  { kind: "hostname"; hostname: string; buffered: Buffer } | { kind: "none" | "not_tls" | "sni_timeout" | "gone" };

/** Reads until the ClientHello is in; leaves the socket paused with everything read in `buffered`. */
function readClientHello(client: Socket): Promise<HelloResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (r: HelloResult) => {
      client.pause();
      client.removeListener("data", onData);
      client.removeListener("close", onClose);
      client.removeListener("end", onClose);
      clearTimeout(timer);
      resolve(r);
    };
    const onData = (d: Buffer) => {
      chunks.push(d);
      size += d.length;
      const buffered = Buffer.concat(chunks, size);
      const r = parseSni(buffered);
      if (r.kind === "hostname") done({ kind: "hostname", hostname: r.hostname, buffered });
      else if (r.kind === "none") done({ kind: "none" });
      else if (r.kind === "not-tls" || size > MAX_SNI_BUFFER_BYTES) done({ kind: "not_tls" });
    };
    const onClose = () => done({ kind: "gone" });
    const timer = setTimeout(() => done({ kind: "sni_timeout" }), CLIENT_HELLO_TIMEOUT_MS);
    client.on("data", onData);
    client.once("close", onClose);
    client.once("end", onClose);
  });
}

/**
 * Both directions piped with half-close kept (a client that ends its side still gets the
 * answer: allowHalfOpen on both sockets, and pipe() ends the other side's writing only).
 * Resolves once both sockets are closed; an error on either ends both.
 */
function pipeBothWays(
  client: Socket,
  upstream: Socket,
  first: Buffer,
  count: (direction: "in" | "out", n: number) => void,
): Promise<void> {
  return new Promise((resolve) => {
    let open = 2;
    const closed = () => {
      if (--open === 0) resolve();
    };
    client.once("close", closed);
    upstream.once("close", closed);
    const fail = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", fail);
    upstream.on("error", fail);
    // A side that closes entirely (not a half-close) takes the other with it.
    client.once("close", () => upstream.destroySoon());
    upstream.once("close", () => client.destroySoon());
    count("in", first.length);
    client.on("data", (d: Buffer) => count("in", d.length));
    upstream.on("data", (d: Buffer) => count("out", d.length));
    upstream.write(first);
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  });
}
