import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { TempkubeError } from "../../util/errors.js";
import { listClusters, readState, writeState, type LocalClusterState } from "./cluster-state.js";
import { ClusterLayout, clustersDir } from "./layout.js";
import { planNetwork } from "./network.js";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "tk-state-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function state(id: string): LocalClusterState {
  return {
    id,
    spec: { id, kubernetesVersion: "1.34", privileged: false, size: "1-small", workers: 0 },
    kubernetesVersion: "1.34.0",
    network: planNetwork(id, 1, [`${id}-control-plane`]),
    phase: "provisioning",
    createdAt: "2026-01-01T00:00:00.000Z",
  };
}

test("a written state reads back whole, and leaves no temporary file", async () => {
  const layout = new ClusterLayout("abc", clustersDir(dir));
  await mkdir(layout.root, { recursive: true });
  await writeState(layout, state("abc"));
  await writeState(layout, { ...state("abc"), phase: "running" });
  assert.deepEqual(await readState(layout), { ...state("abc"), phase: "running" });
  assert.deepEqual(await readdir(layout.root), ["state.json"]);
});

test("a cluster without a state is not found, by its id", async () => {
  await assert.rejects(
    readState(new ClusterLayout("nope", clustersDir(dir))),
    (err: unknown) => err instanceof TempkubeError && err.type === "not-found" && err.message.includes("nope"),
  );
});

test("only clusters with a state are listed, sorted", async () => {
  for (const id of ["zed", "bee"]) {
    const layout = new ClusterLayout(id, clustersDir(dir));
    await mkdir(layout.root, { recursive: true });
    await writeState(layout, state(id));
  }
  await mkdir(join(clustersDir(dir), "halfmade"), { recursive: true });
  assert.deepEqual(await listClusters(dir), ["abc", "bee", "zed"]);
  assert.deepEqual(await listClusters(join(dir, "absent")), []);
});
