import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { GatewayPaths, type ClusterRoute } from "../../gateway/gateway-files.js";
import { writeState, type LocalClusterState } from "./cluster-state.js";
import { adoptRoutes, clusterRoute, writeRoute } from "./gateway-route.js";
import { ClusterLayout, clustersDir } from "./layout.js";

let dir = "";
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "tempkube-routes-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function cluster(id: string, phase: LocalClusterState["phase"], index: number): Promise<LocalClusterState> {
  const layout = new ClusterLayout(id, clustersDir(dir));
  await mkdir(layout.root, { recursive: true });
  const state = {
    id,
    phase,
    network: { nodes: [{ ip: `172.30.${index}.2` }] },
  } as unknown as LocalClusterState;
  await writeState(layout, state);
  return state;
}

const readRoute = async (id: string) =>
  JSON.parse(await readFile(new GatewayPaths(dir).route(id), "utf8")) as ClusterRoute;

test("a route names the control-plane node's apiserver and the admin kubeconfig", async () => {
  const state = await cluster("rt1", "running", 9);
  const layout = new ClusterLayout("rt1", clustersDir(dir));
  assert.deepEqual(clusterRoute(state, layout, "stopped"), {
    clusterId: "rt1",
    phase: "stopped",
    apiserver: "172.30.9.2:6443",
    nodeAddress: "172.30.9.2",
    adminKubeconfig: layout.kubeconfig("admin"),
  });
});

test("adopting routes: the missing ones written from the state, the existing kept, the orphaned removed", async () => {
  const running = await cluster("run1", "running", 1);
  await cluster("stop1", "stopped", 2);
  await cluster("fail1", "failed", 3);
  await cluster("prov1", "provisioning", 4);
  // Written by a stop that ran after the state this adoption would read: kept as it is.
  const keptState = await cluster("kept1", "running", 5);
  await writeRoute(dir, clusterRoute(keptState, new ClusterLayout("kept1", clustersDir(dir)), "stopped"));
  // Its cluster is gone.
  await writeRoute(
    dir,
    clusterRoute({ ...running, id: "gone1" }, new ClusterLayout("gone1", clustersDir(dir)), "running"),
  );

  await adoptRoutes(dir);
  assert.equal((await readRoute("run1")).phase, "running");
  assert.equal((await readRoute("run1")).apiserver, "172.30.1.2:6443");
  assert.equal((await readRoute("stop1")).phase, "stopped");
  assert.equal((await readRoute("fail1")).phase, "stopped");
  assert.equal((await readRoute("kept1")).phase, "stopped");
  assert.equal(existsSync(new GatewayPaths(dir).route("prov1")), false, "a provision writes its own when ready");
  assert.equal(existsSync(new GatewayPaths(dir).route("gone1")), false);
  // Nothing half-written left beside them.
  assert.deepEqual(
    (await readdir(new GatewayPaths(dir).routesDir)).filter((f) => !f.endsWith(".json")),
    [],
  );
});
