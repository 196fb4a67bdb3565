import { existsSync } from "node:fs";
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { mountsUnder } from "../../host/mounts.js";

/** containerd's runtime v2 task directories: bundles under its state dir, work dirs under its root. */
const TASK_DIR = "io.containerd.runtime.v2.task";
/** runc's state root as the runc shim passes it (`--root /run/containerd/runc/<namespace>`). */
export const RUNC_STATE_ROOT = "/run/containerd/runc";
/** A shim's socket, as its bundle names it; nothing else is ever removed from /run/containerd/s. */
const SHIM_SOCKET = /^unix:\/\/(\/run\/containerd\/s\/[0-9a-f]{64})$/;

/** The shim socket a task's bundle names (containerd 2: bootstrap.json; 1.x: a file `address`). */
async function shimSocket(bundle: string): Promise<string | undefined> {
  const bootstrap = await readFile(join(bundle, "bootstrap.json"), "utf8")
    .then((t) => (JSON.parse(t) as { address?: string }).address)
    .catch(() => undefined);
  const address = bootstrap ?? (await readFile(join(bundle, "address"), "utf8").catch(() => undefined))?.trim();
  return address?.match(SHIM_SOCKET)?.[1];
}

/**
 * What each task of a node's containerd leaves outside the cluster's directory, removed only
 * when the task ends while containerd runs: runc's state (`/run/containerd/runc/<ns>/<id>`)
 * and the shim's socket (`/run/containerd/s/<hash>`). A stop kills containerd and the shims
 * together, so every stop and destroy left them in /run, which is memory (a host after a few
 * suites held 3,117 runc directories and 2,108 sockets, 80 MB), and the next start's
 * containerd spent ~0.5 s running `shim delete` for each task of the last boot before it
 * served (runtime/v2 `cleanupAfterDeadShim`). Called once every process of the cluster has
 * ended and its mounts are gone, this does that cleanup; containerd then finds no task to
 * load, and its CRI plugin counts each container of the last boot as exited
 * (internal/cri/server/restart.go, a task not found). A bundle with anything still mounted
 * below it is left to containerd.
 */
export async function releaseTaskState(clusterRoot: string): Promise<void> {
  // Read once: /proc/self/mountinfo, not once per task.
  const mounts = await mountsUnder(clusterRoot);
  const nodesDir = join(clusterRoot, "nodes");
  for (const node of await readdir(nodesDir).catch(() => [] as string[])) {
    const containerd = join(nodesDir, node, "containerd");
    const bundles = join(containerd, "state", TASK_DIR);
    for (const namespace of await readdir(bundles).catch(() => [] as string[])) {
      for (const id of await readdir(join(bundles, namespace)).catch(() => [] as string[])) {
        const bundle = join(bundles, namespace, id);
        if (mounts.some((m) => m === bundle || m.startsWith(`${bundle}/`))) continue;
        const socket = await shimSocket(bundle);
        await rm(join(RUNC_STATE_ROOT, namespace, id), { recursive: true, force: true });
        if (socket) await rm(socket, { force: true });
        await rm(join(containerd, "root", TASK_DIR, namespace, id), { recursive: true, force: true });
        await rm(bundle, { recursive: true, force: true });
      }
    }
  }
}

/** Every runc state directory under `runcRoot` (`<namespace>/<id>`), with the bundle its state.json names. */
async function runcStates(runcRoot: string): Promise<{ dir: string; bundle: string | undefined }[]> {
  const found: { dir: string; bundle: string | undefined }[] = [];
  for (const namespace of await readdir(runcRoot).catch(() => [] as string[])) {
    for (const id of await readdir(join(runcRoot, namespace)).catch(() => [] as string[])) {
      const dir = join(runcRoot, namespace, id);
      const state = await readFile(join(dir, "state.json"), "utf8").catch(() => "");
      found.push({ dir, bundle: state.match(/"bundle=([^"]+)"/)?.[1] });
    }
  }
  return found;
}

/** runc state directories whose bundle lies in the cluster's directory (for leak checks): none once it stopped. */
export async function runcStateOf(clusterRoot: string): Promise<string[]> {
  return (await runcStates(RUNC_STATE_ROOT)).filter((s) => s.bundle?.startsWith(`${clusterRoot}/`)).map((s) => s.dir);
}

/**
 * runc state that an older tempkube left in /run for containers of this data dir's clusters
 * (stopped or destroyed before releaseTaskState): removed at the server's start. Only what is
 * provably this data dir's and dead: runc's state names a bundle in a cluster's containerd
 * task directory under `clustersBase`, and that bundle no longer exists. Returns how many.
 */
export async function releaseOrphanedRuncState(clustersBase: string, runcRoot = RUNC_STATE_ROOT): Promise<number> {
  let released = 0;
  for (const { dir, bundle } of await runcStates(runcRoot)) {
    if (!bundle?.startsWith(`${clustersBase}/`) || !bundle.includes(`/containerd/state/${TASK_DIR}/`)) continue;
    if (existsSync(bundle)) continue;
    await rm(dir, { recursive: true, force: true });
    released++;
  }
  return released;
}
