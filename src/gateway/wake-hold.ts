import type { GatewayContext } from "./gateway-context.js";
import type { ClusterRoute } from "./gateway-files.js";
import type { RefusalReason } from "./gateway-metrics.js";
import { isSleeping, readClusterRoute, requestWake } from "./route-reader.js";

/** How long a connection for a sleeping cluster is held before it is given up (a start takes seconds). */
export const WAKE_TIMEOUT_MS = 120_000;
const WAKE_POLL_MS = 150;

export type RouteOutcome =
  | { kind: "route"; route: ClusterRoute; woken: boolean }
  | { kind: "refused"; reason: RefusalReason; detail: string }
  /** The client went away while it was held. */
  | { kind: "abandoned" };

/**
 * The running route of a cluster, waking it first when it sleeps: `wake/<id>` asks the server
 * to start it, and the caller's connection is held (paused) until the server has removed
 * `sleeping/<id>` and the runtime has written the route `running`. Anything else is refused
 * at once: no route (unknown or destroyed), or stopped by its owner.
 */
export async function runningRoute(
  ctx: GatewayContext,
  clusterId: string,
  signal: AbortSignal,
  timeoutMs = WAKE_TIMEOUT_MS,
): Promise<RouteOutcome> {
  if (!(await isSleeping(ctx.paths, clusterId))) return routeNow(ctx, clusterId, false);
  // One wake per sleep: connections arriving while a wake is pending wait for the same one.
  if (await requestWake(ctx.paths, clusterId)) {
    ctx.metrics.wakes.inc();
    ctx.log.info({ cluster: clusterId }, "wake requested for a sleeping cluster; holding the connection");
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (signal.aborted) return { kind: "abandoned" };
    if (!(await isSleeping(ctx.paths, clusterId))) return routeNow(ctx, clusterId, true);
    if (!(await readClusterRoute(ctx.paths, clusterId)))
      return { kind: "refused", reason: "unknown_cluster", detail: `cluster ${clusterId} was destroyed while asleep` };
    if (Date.now() > deadline)
      return {
        kind: "refused",
        reason: "wake_timeout",
        detail: `cluster ${clusterId} did not wake within ${timeoutMs / 1000} s`,
      };
    await new Promise((r) => setTimeout(r, WAKE_POLL_MS));
  }
}

async function routeNow(ctx: GatewayContext, clusterId: string, woken: boolean): Promise<RouteOutcome> {
  const route = await readClusterRoute(ctx.paths, clusterId);
  if (!route) return { kind: "refused", reason: "unknown_cluster", detail: `no cluster ${clusterId}` };
  if (route.phase !== "running")
    return { kind: "refused", reason: "stopped", detail: `cluster ${clusterId} is ${route.phase}` };
  return { kind: "route", route, woken };
}
