import { existsSync } from "node:fs";
import { link, mkdir, readdir, rename, rm, unlink, writeFile } from "node:fs/promises";
import { GatewayPaths, type ClusterRoute } from "../../gateway/gateway-files.js";
import { readState, type LocalClusterState } from "./cluster-state.js";
import { ClusterLayout, clustersDir } from "./layout.js";

/**
 * The cluster's route for the gateway (gateway-files.ts): the gateway process reads these
 * files and nothing else of the runtime, so every cluster of the data dir is routable,
 * whoever made it (the server, `tempkube runtime create`, the warm pool).
 */
export function clusterRoute(
  state: LocalClusterState,
  layout: ClusterLayout,
  phase: ClusterRoute["phase"],
): ClusterRoute {
  const node = state.network.nodes[0].ip;
  return {
    clusterId: state.id,
    phase,
    apiserver: `${node}:6443`,
    nodeAddress: node,
    adminKubeconfig: layout.kubeconfig("admin"),
  };
}

/** Written whole and renamed into place: the gateway never reads half a route. */
export async function writeRoute(dataDir: string, route: ClusterRoute): Promise<void> {
  const paths = new GatewayPaths(dataDir);
  await mkdir(paths.routesDir, { recursive: true });
  const file = paths.route(route.clusterId);
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(route, null, 2) + "\n");
  await rename(tmp, file);
}

export async function removeRoute(dataDir: string, clusterId: string): Promise<void> {
  await rm(new GatewayPaths(dataDir).route(clusterId), { force: true });
}

/**
 * Routes for clusters that have none (made before routes existed, or a crash between a
 * state's write and its route's), and none for clusters that are gone. A route that exists
 * is never rewritten: the runtime operation that wrote it knows better than a state read
 * here a moment before it ran. A cluster being provisioned gets its route when it is ready.
 */
export async function adoptRoutes(dataDir: string): Promise<void> {
  const paths = new GatewayPaths(dataDir);
  await mkdir(paths.routesDir, { recursive: true });
  const dir = clustersDir(dataDir);
  for (const id of await readdir(dir).catch(() => [] as string[])) {
    const layout = new ClusterLayout(id, dir);
    const state = await readState(layout).catch(() => undefined);
    if (!state || state.phase === "provisioning") continue;
    const route = clusterRoute(state, layout, state.phase === "running" ? "running" : "stopped");
    // Linked into place: whole, and only where there is none (EEXIST), so no write here undoes a stop's or a start's.
    const tmp = `${paths.route(id)}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(route, null, 2) + "\n");
    try {
      await link(tmp, paths.route(id)).catch((err: unknown) => {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      });
    } finally {
      await unlink(tmp);
    }
  }
  for (const file of await readdir(paths.routesDir)) {
    if (!file.endsWith(".json")) continue;
    const id = file.slice(0, -".json".length);
    if (!existsSync(new ClusterLayout(id, dir).root)) await removeRoute(dataDir, id);
  }
}
