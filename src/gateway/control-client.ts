import { request } from "node:http";
import type { GatewayActivity, GatewayPaths } from "./gateway-files.js";

const CONTROL_TIMEOUT_MS = 2_000;

/** GET over the gateway's control socket; undefined when no gateway answers there. */
export function controlGet(paths: GatewayPaths, path: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = request(
      { socketPath: paths.controlSocket, path, method: "GET", timeout: CONTROL_TIMEOUT_MS },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (body += d));
        res.on("end", () => resolve(res.statusCode === 200 ? body : undefined));
        res.on("error", () => resolve(undefined));
      },
    );
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(undefined));
    req.end();
  });
}

/** Connections per cluster as the gateway saw them (for sleep-when-idle); undefined when the gateway is not running. */
export async function fetchGatewayActivity(paths: GatewayPaths): Promise<GatewayActivity | undefined> {
  const body = await controlGet(paths, "/activity");
  if (body === undefined) return undefined;
  try {
    return JSON.parse(body) as GatewayActivity;
  } catch {
    return undefined;
  }
}

/** The gateway's metrics in Prometheus text format (to append to the server's /metrics); undefined when it is not running. */
export function fetchGatewayMetrics(paths: GatewayPaths): Promise<string | undefined> {
  return controlGet(paths, "/metrics");
}
