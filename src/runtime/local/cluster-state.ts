import { existsSync } from "node:fs";
import { readdir, readFile, rename, writeFile } from "node:fs/promises";
import type { ClusterSpec } from "../../core/cluster-spec.js";
import { TempkubeError } from "../../util/errors.js";
import type { RuntimePhase } from "../driver.js";
import { ClusterLayout, clustersDir } from "./layout.js";
import type { ClusterNetwork } from "./network.js";

/** What the runtime keeps about a cluster on disk (state.json); enough to adopt it after a restart. */
export interface LocalClusterState {
  id: string;
  spec: ClusterSpec;
  kubernetesVersion: string;
  /** The nodes' kubelet release when it is not the control plane's (a cgroup v1 host; core/kubelet-policy.ts); absent: the same. */
  kubeletVersion?: string;
  network: ClusterNetwork;
  phase: Exclude<RuntimePhase, "absent">;
  createdAt: string;
  /** The domain its apiserver certificate and LoadBalancer hostnames were last made for (absent: made before the gateway). */
  clusterDomain?: string;
}

export async function readState(layout: ClusterLayout): Promise<LocalClusterState> {
  const text = await readFile(layout.stateFile, "utf8").catch(() => undefined);
  if (!text) throw new TempkubeError("not-found", `cluster ${layout.clusterId} does not exist on this host`);
  return JSON.parse(text) as LocalClusterState;
}

/** Written whole and renamed into place: a crash mid-write leaves the previous state, never half of one. */
export async function writeState(layout: ClusterLayout, state: LocalClusterState): Promise<void> {
  const file = layout.stateFile;
  await writeFile(`${file}.tmp`, JSON.stringify(state, null, 2));
  await rename(`${file}.tmp`, file);
}

/** Ids of the data dir's clusters that have a state (a directory without one is a provision's very start). */
export async function listClusters(dataDir: string): Promise<string[]> {
  const dir = clustersDir(dataDir);
  const entries = await readdir(dir).catch(() => [] as string[]);
  return entries.filter((id) => existsSync(new ClusterLayout(id, dir).stateFile)).sort();
}
