import type { Logger } from "pino";
import type { ActivityTracker } from "./activity.js";
import type { GatewayConfig, GatewayPaths } from "./gateway-files.js";
import type { GatewayMetrics } from "./gateway-metrics.js";

/** What every part of the gateway process shares. */
export interface GatewayContext {
  paths: GatewayPaths;
  config: GatewayConfig;
  activity: ActivityTracker;
  metrics: GatewayMetrics;
  log: Logger;
}

/** "host:port", "[v6]:port" → its parts. */
export function splitHostPort(address: string): { host: string; port: number } {
  const m = address.match(/^\[([^\]]+)\]:(\d+)$/) ?? address.match(/^([^:]+):(\d+)$/);
  if (!m) throw new Error(`not a host:port address: ${JSON.stringify(address)}`);
  return { host: m[1], port: Number(m[2]) };
}

/**
 * TCP keepalive on every proxied socket: a client that vanishes without a FIN (a laptop lid
 * closed mid-watch) is found dead by the kernel, so its connection stops counting as open and
 * no longer keeps its cluster awake.
 */
export const KEEPALIVE_DELAY_MS = 30_000;
