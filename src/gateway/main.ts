import { mkdir, readFile } from "node:fs/promises";
import type { Server } from "node:net";
import { logger } from "../util/log.js";
import { ActivityTracker } from "./activity.js";
import { listenControlSocket } from "./control-socket.js";
import { GatewayCa } from "./gateway-ca.js";
import type { GatewayContext } from "./gateway-context.js";
import { gatewayCaPath, GatewayPaths, type GatewayConfig } from "./gateway-files.js";
import { GatewayMetrics } from "./gateway-metrics.js";
import { createHttpGateway } from "./http-gateway.js";
import { HttpsTermination } from "./https-termination.js";
import { createTlsGateway } from "./tls-gateway.js";

/**
 * The gateway process: `node dist/gateway/main.js <data dir>`, started by ensureGateway under
 * a supervisor of its own, apart from the server, so open connections outlive the server.
 * Exit code 2: it cannot run with this configuration (an address in use, a missing config);
 * the log's last line says why, naming the flag that sets the address.
 */
const CONFIG_EXIT = 2;
const since = Date.now();
const startedLevel = process.env.TEMPKUBE_LOG_LEVEL ?? "info";
logger.level = startedLevel;
const log = logger.child({ component: "gateway" });

async function main(): Promise<void> {
  const dataDir = process.argv[2];
  if (!dataDir) fail("usage: node dist/gateway/main.js <data dir>");
  const paths = new GatewayPaths(dataDir);
  let config: GatewayConfig;
  try {
    config = JSON.parse(await readFile(paths.config, "utf8")) as GatewayConfig;
  } catch (err) {
    fail(`gateway: cannot read its configuration ${paths.config}: ${(err as Error).message}`);
  }
  for (const dir of [paths.routesDir, paths.sleepingDir, paths.wakeDir, paths.httpRoutesDir])
    await mkdir(dir, { recursive: true });
  const ctx: GatewayContext = {
    paths,
    config,
    activity: new ActivityTracker(since),
    metrics: new GatewayMetrics(),
    log,
  };

  // Without its CA the gateway still routes everything else (apiservers, HTTP, routes with their own certificates).
  const ca = await GatewayCa.ensure(paths, config.certificateDomains ?? [config.clusterDomain]).then(
    ({ ca, made }) => {
      if (made !== "reused")
        log.info({ ca: gatewayCaPath(paths), made }, "gateway CA made (clients trust it with curl --cacert)");
      return ca;
    },
    (err: unknown) => {
      log.error({ err, dir: paths.tlsDir }, "gateway CA unusable: HTTPS routes with the gateway's certificate fail");
      return undefined;
    },
  );

  const http = createHttpGateway(ctx);
  const tls = createTlsGateway(ctx, new HttpsTermination(ctx, ca, http));
  await listen(tls, config.listen, "--gateway-listen");
  await listen(http, config.httpListen, "--gateway-http-listen");
  // Last: a control socket that answers means both ports are listening (ensureGateway waits for it).
  const control = await listenControlSocket(ctx);
  log.info(
    { listen: config.listen, httpListen: config.httpListen, clusterDomain: config.clusterDomain },
    "gateway listening",
  );

  const stop = (signal: string) => {
    log.info({ signal }, "gateway stopping");
    tls.close();
    http.close();
    control.close();
    process.exit(0);
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
}

function listen(server: Server, at: { host: string; port: number }, flag: string): Promise<void> {
  return new Promise((resolve) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const why =
        err.code === "EADDRINUSE"
          ? "the address is already in use"
          : err.code === "EACCES"
            ? "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
            : err.code === "EADDRNOTAVAIL"
              ? "no interface of this host has that address"
              : err.message;
      fail(`gateway: cannot listen on ${at.host}:${at.port} (${flag}): ${why} [${err.code ?? "error"}]`);
    };
    server.once("error", onError);
    server.listen({ host: at.host, port: at.port }, () => {
      server.removeListener("error", onError);
      server.on("error", (err) => log.error({ err, flag }, "gateway listener error"));
      resolve();
    });
  });
}

function fail(message: string): never {
  log.fatal(message);
  process.exit(CONFIG_EXIT);
}

main().catch((err: unknown) => {
  log.fatal({ err }, "gateway failed to start");
  process.exit(1);
});
