import { chmod, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { GatewayContext } from "./gateway-context.js";

/**
 * The gateway's side door for tempkube itself: GET /metrics (merged into the server's) and
 * GET /activity (read by the lifetime controller for sleep-when-idle). A unix socket with mode
 * 0600, so only root (the server) can read which clusters are in use.
 */
export async function listenControlSocket(ctx: GatewayContext): Promise<Server> {
  const server = createServer((req, res) => {
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { "content-type": type });
      res.end(body);
    };
    if (req.method === "GET" && req.url === "/activity")
      return send(200, "application/json", JSON.stringify(ctx.activity.snapshot()));
    if (req.method === "GET" && req.url === "/metrics") {
      ctx.metrics.registry
        .metrics()
        .then((text) => send(200, ctx.metrics.registry.contentType, text))
        .catch((err: Error) => send(500, "text/plain", `${err.message}\n`));
      return;
    }
    send(404, "text/plain", `no ${req.method} ${req.url} here: GET /metrics or GET /activity\n`);
  });
  const path = ctx.paths.controlSocket;
  // Left by a gateway that was killed: a unix socket file outlives its listener, and listen() would fail on it.
  await rm(path, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => {
      server.removeListener("error", reject);
      resolve();
    });
  });
  await chmod(path, 0o600);
  return server;
}
