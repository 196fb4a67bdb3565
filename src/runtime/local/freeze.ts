import { spawn } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { logger } from "../../util/log.js";
import type { FreezeOutcome } from "../driver.js";
import { compressedSwap, ensureCompressedSwap } from "../../host/compressed-swap.js";
import { clusterCgroup, isFrozen, keepFromSwap, setFrozen, swapOut } from "./cgroups.js";
import type { LocalClusterState } from "./cluster-state.js";
import { CONTROL_PLANE } from "./components.js";
import { fromCache, KubeApi } from "./kube-api.js";
import type { ClusterLayout } from "./layout.js";
import { Supervisor } from "./supervisor.js";
import { THAW_WINDOW_MS, writeThawWindow } from "./thaw-window.js";

/**
 * Freezing an idle cluster: every process of it (control plane, containerd, kubelets, pods)
 * stopped in place by the cgroup freezer. It keeps its memory and uses no CPU; thawing takes
 * milliseconds, against seconds for a start. Only a cluster in which nothing of the tenant's
 * runs or is due is frozen: a frozen cluster does nothing on its own (no pod runs, no CronJob
 * fires) until the next connection through the gateway thaws it.
 *
 * The one ordering that matters is the node lifecycle controller's (kube-controller-manager,
 * pkg/controller/nodelifecycle, monitorNodeHealth): it marks a node NotReady, and every pod on
 * it not ready, when the node's Lease has not moved for the node monitor grace period *by its
 * own clock*. Thawed together, its overdue 5 s check can run before the kubelet's overdue lease
 * renewal. So kube-controller-manager is stopped (SIGSTOP) before the freeze and continued
 * only once every node's Lease has been renewed after that moment.
 *
 * The kubelet's own stale state after a thaw (its last runtime status check by its clock) is
 * thaw-window.ts's: the freeze opens the window in which the apiserver refuses the NotReady
 * report that state causes, the thaw sets its end.
 */

/** Below this the controller manager's last look at the leases is still within the grace period (40 s and more). */
const SHORT_FREEZE_MS = 20_000;
/**
 * How long a thaw waits for the kubelets' lease renewals before continuing the controller
 * manager anyway. Not on the path of the connection that asked for the thaw (it goes once
 * the apiserver runs). A kubelet renews at once on thaw: its renew timer is overdue.
 */
const LEASE_WAIT_MS = 10_000;

/** Pods of tempkube's own add-ons (addon-manifests.ts): they run in every cluster and are not the tenant's. */
function isAddonPod(pod: KubeObject): boolean {
  const labels = pod.metadata.labels ?? {};
  return (
    pod.metadata.namespace === "kube-system" &&
    (labels["k8s-app"] === "kube-dns" || labels.app === "local-path-provisioner")
  );
}

interface KubeObject {
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: { suspend?: boolean };
  status?: { conditions?: { type: string; status: string }[] };
}

/**
 * What of the tenant's would run or come due while frozen: pods not finished (other than the
 * add-ons'), Jobs not finished, CronJobs not suspended. Undefined when there is none.
 */
export async function tenantWorkload(api: KubeApi): Promise<string | undefined> {
  const list = async (path: string): Promise<KubeObject[]> => {
    const { status, body } = await api.get<{ items: KubeObject[] }>(fromCache(path));
    if (status !== 200 || !body?.items) throw new Error(`GET ${path} answered ${status}`);
    return body.items;
  };
  const named = (o: KubeObject) => `${o.metadata.namespace}/${o.metadata.name}`;
  const pods = (await list("/api/v1/pods?fieldSelector=status.phase!=Succeeded,status.phase!=Failed")).filter(
    (p) => !isAddonPod(p),
  );
  if (pods.length) return `${pods.length} pod(s) of the tenant run (${pods.slice(0, 3).map(named).join(", ")})`;
  const finished = (j: KubeObject) =>
    (j.status?.conditions ?? []).some((c) => (c.type === "Complete" || c.type === "Failed") && c.status === "True");
  const jobs = (await list("/apis/batch/v1/jobs")).filter((j) => !finished(j) && !j.spec?.suspend);
  if (jobs.length) return `${jobs.length} Job(s) not finished (${jobs.slice(0, 3).map(named).join(", ")})`;
  const cronJobs = (await list("/apis/batch/v1/cronjobs")).filter((c) => !c.spec?.suspend);
  if (cronJobs.length) return `${cronJobs.length} CronJob(s) scheduled (${cronJobs.slice(0, 3).map(named).join(", ")})`;
  return undefined;
}

/** The admin client of the cluster's apiserver (what the boot uses). */
export async function adminApi(layout: ClusterLayout, state: LocalClusterState): Promise<KubeApi> {
  const [ca, cert, key] = await Promise.all(
    ["ca.crt", "admin.crt", "admin.key"].map((f) => readFile(layout.pki(f), "utf8")),
  );
  return new KubeApi(`https://${state.network.nodes[0].ip}:6443`, { ca, cert, key });
}

const stoppedAtFile = (layout: ClusterLayout) => join(layout.runDir, "controller-manager.stopped-at");

async function controllerManagerPid(layout: ClusterLayout): Promise<number | undefined> {
  return new Supervisor(layout.runDir, layout.logDir).pid(CONTROL_PLANE.controllerManager, "child");
}

function signal(pid: number | undefined, sig: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(pid, sig);
  } catch {
    /* gone: a restarted one runs anyway */
  }
}

/**
 * Compressions under way, by cluster id: a thaw waits for its cluster's. A frozen cluster's
 * reclaim ends once nothing is left to take (a few passes without progress), but one that
 * ran again would keep faulting pages back in and the reclaim keep taking them.
 */
const compressing = new Map<string, Promise<void>>();

/**
 * Pushes a frozen cluster's memory into compressed swap in memory (host/compressed-swap.ts):
 * ~330 MiB private down to ~75 MiB of compressed pages (measured: docs/local-runtime.md). In
 * the background: the freeze itself is done; a thaw meanwhile waits for it (seconds at most).
 */
function compressInBackground(clusterId: string): void {
  const work = (async () => {
    // Looked at again each time: swap on a disk added since (by an operator) rules compression out.
    await ensureCompressedSwap();
    if ((await compressedSwap()).state !== "on") return;
    const started = Date.now();
    const swapped = await swapOut(clusterCgroup(clusterId));
    logger.info(
      { clusterId, swappedMiB: Math.round(swapped / 2 ** 20), ms: Date.now() - started },
      "frozen cluster compressed",
    );
    // No room left for another cluster like this one: the next ones keep their memory (the capacity counted on less).
    const after = await compressedSwap();
    if (after.state === "on" && after.sizeBytes - after.usedBytes < swapped)
      logger.warn({ device: after.device }, "compressed swap is (nearly) full: frozen clusters keep their memory");
  })()
    .catch((err: unknown) => logger.warn({ clusterId, err: String(err) }, "compressing a frozen cluster failed"))
    .finally(() => compressing.delete(clusterId));
  compressing.set(clusterId, work);
}

/**
 * Freezes the cluster unless something of the tenant's runs (then says what). With
 * `compress`, its memory then goes to compressed swap, when the host has it.
 */
export async function freezeCluster(
  layout: ClusterLayout,
  state: LocalClusterState,
  options: { compress: boolean } = { compress: false },
): Promise<FreezeOutcome> {
  if (await isFrozen(clusterCgroup(layout.clusterId))) return { frozen: true };
  const api = await adminApi(layout, state);
  let busy: string | undefined;
  try {
    busy = await tenantWorkload(api);
  } catch (err) {
    return { frozen: false, reason: `what runs in it could not be read: ${(err as Error).message}` };
  }
  if (busy) return { frozen: false, reason: busy };
  const frozenAt = Date.now();
  await writeThawWindow(api, { since: frozenAt }).catch((err: unknown) =>
    logger.warn(
      { clusterId: layout.clusterId, err: String(err) },
      "the thaw window could not be opened: the node may show NotReady for one status sync after the thaw",
    ),
  );
  await writeFile(stoppedAtFile(layout), String(frozenAt));
  signal(await controllerManagerPid(layout), "SIGSTOP");
  try {
    await setFrozen(clusterCgroup(layout.clusterId), true);
  } catch (err) {
    await thawCluster(layout, state, { waitForLeases: false });
    await writeThawWindow(api, {}).catch(() => undefined);
    throw err;
  }
  if (options.compress) compressInBackground(layout.clusterId);
  return { frozen: true };
}

/**
 * Thaws the cluster: every process at once but the controller manager, which continues once
 * every node's Lease moved after it was stopped. Returns as soon as the cluster's processes
 * run (its apiserver answers: the held connection may go), with `managerContinued`, which
 * settles once the controller manager runs too; with `waitForLeases: false` (a stop, a destroy)
 * it continues at once. Safe to call on a cluster that is not frozen: it then only makes sure
 * the controller manager runs.
 */
export async function thawCluster(
  layout: ClusterLayout,
  state: LocalClusterState,
  options: { waitForLeases: boolean } = { waitForLeases: true },
): Promise<{ managerContinued: Promise<void> }> {
  await compressing.get(layout.clusterId);
  // Also after a server that died while compressing: its pages come back as they are touched.
  await keepFromSwap(clusterCgroup(layout.clusterId));
  await setFrozen(clusterCgroup(layout.clusterId), false);
  const stoppedAt = Number((await readFile(stoppedAtFile(layout), "utf8").catch(() => "")).trim());
  const pid = await controllerManagerPid(layout);
  const continueManager = async () => {
    signal(pid, "SIGCONT");
    await rm(stoppedAtFile(layout), { force: true });
  };
  // The end of the window (thaw-window.ts), once the apiserver runs; not for a stop or a destroy.
  const endWindow = async (api: KubeApi) => {
    await writeThawWindow(api, { since: stoppedAt, until: Date.now() + THAW_WINDOW_MS }).catch((err: unknown) =>
      logger.warn({ clusterId: layout.clusterId, err: String(err) }, "the thaw window's end could not be set"),
    );
  };
  if (!options.waitForLeases || !stoppedAt || Date.now() - stoppedAt <= SHORT_FREEZE_MS) {
    await continueManager();
    if (options.waitForLeases && stoppedAt) void adminApi(layout, state).then(endWindow, () => undefined);
    return { managerContinued: Promise.resolve() };
  }
  // Whatever becomes of this process (a server killed now), the controller manager continues
  // by LEASE_WAIT_MS: a detached timer of its own (SIGCONT to a running process does nothing).
  if (pid)
    spawn("/bin/sh", ["-c", `sleep ${LEASE_WAIT_MS / 1000}; kill -CONT ${pid} 2>/dev/null`], {
      detached: true,
      stdio: "ignore",
    }).unref();
  const managerContinued = (async () => {
    const api = await adminApi(layout, state);
    await endWindow(api);
    const renewed = await waitForLeaseRenewals(api, state, stoppedAt);
    if (!renewed)
      logger.warn(
        { clusterId: layout.clusterId },
        `the kubelets did not renew their leases within ${LEASE_WAIT_MS / 1000} s of a thaw; the controller manager continues anyway`,
      );
    await continueManager();
  })();
  return { managerContinued };
}

/** Whether every node's Lease (kube-node-lease) was renewed after `since` (epoch ms), within LEASE_WAIT_MS. */
async function waitForLeaseRenewals(api: KubeApi, state: LocalClusterState, since: number): Promise<boolean> {
  const deadline = Date.now() + LEASE_WAIT_MS;
  const nodes = state.network.nodes.map((n) => n.name);
  while (Date.now() < deadline) {
    try {
      const { status, body } = await api.get<{
        items: { metadata: { name: string }; spec?: { renewTime?: string } }[];
      }>("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases");
      const renewed = new Map(
        (status === 200 ? (body?.items ?? []) : []).map((l) => [l.metadata.name, Date.parse(l.spec?.renewTime ?? "")]),
      );
      if (nodes.every((n) => (renewed.get(n) ?? 0) > since)) return true;
    } catch {
      /* the apiserver is still coming back: look again */
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}
