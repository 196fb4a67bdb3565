import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { GatewayPaths, type ClusterRoute } from "../../gateway/gateway-files.js";
import type { LocalClusterState } from "./cluster-state.js";
import type { ClusterLayout } from "./layout.js";

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
