import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { unlessRoot } from "../testing/root.js";
import { newClusterId } from "../core/cluster-spec.js";
import { clusterCgroup, cpuSeconds as cgroupCpuSeconds, pidsIn } from "../runtime/local/cgroups.js";
import type { LocalClusterState } from "../runtime/local/cluster-state.js";
import { HostInspection } from "../runtime/local/host-inspection.js";
import { LocalRuntime } from "../runtime/local/local-runtime.js";
import { IDLE_CLUSTER, processFootprint, WATCHES_PER_RUNNING_CLUSTER } from "./cluster-footprint.js";
import { readHostBudgets, runningClusters } from "./host-budgets.js";
import { DEFAULT_KUBERNETES_MINOR } from "../setup/catalogue.js";

/**
 * What one idle cluster really takes of the host resources capacity counts (capacity.ts):
 * the countable figures must stay within IDLE_CLUSTER, or the capacity the server promises
 * is more than the host holds. Memory and CPU are printed (noisy on a shared machine, so
 * not asserted); update IDLE_CLUSTER from this output when the runtime changes.
 */
const runtime = new LocalRuntime();
const host = new HostInspection();
const IDLE_MS = 30_000;

/** CPU time of the cluster's cgroup, in seconds. */
async function cpuSeconds(clusterId: string): Promise<number> {
  return (await cgroupCpuSeconds(clusterCgroup(clusterId))) ?? 0;
}

async function hostFigures(): Promise<Record<string, number>> {
  const { budgets } = await readHostBudgets();
  return Object.fromEntries(budgets.map((b) => [b.name, b.inUse]));
}

describe("one idle cluster's footprint", { skip: unlessRoot("real clusters"), timeout: 10 * 60_000 }, () => {
  const id = `e2efp${newClusterId().slice(0, 5)}`;
  let state: LocalClusterState;

  before(async () => {
    for (const old of await runtime.list()) if (old.startsWith("e2efp")) await runtime.destroy(old);
  });

  after(async () => {
    await runtime.destroy(id).catch(() => undefined);
    if (state) assert.deepEqual(await host.leftovers(id, state.network), []);
  });

  it("takes no more inotify instances and watches, threads and open files than capacity counts on", async (t) => {
    const hostBefore = await hostFigures();
    await runtime.provision({
      id,
      kubernetesVersion: DEFAULT_KUBERNETES_MINOR,
      privileged: false,
      size: "1-small",
      workers: 0,
    });
    state = await runtime.readState(id);
    // Idle: CoreDNS and local-path run, the controllers have done their first sync.
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const cpuBefore = await cpuSeconds(id);
    const sampled = Date.now();
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const idleCores = ((await cpuSeconds(id)) - cpuBefore) / ((Date.now() - sampled) / 1000);
    const hostAfter = await hostFigures();
    // Its kubelet watches the cgroups of any other cluster up on the host too.
    const others = (await runningClusters()) - 1;
    const pids = await pidsIn(clusterCgroup(id));
    const total = await processFootprint(pids);
    const byProcess: Record<string, unknown> = {};
    for (const pid of pids) {
      const comm = (await readFile(`/proc/${pid}/comm`, "utf8").catch(() => "?")).trim();
      const fp = await processFootprint([pid]);
      const seen = byProcess[comm] as typeof fp | undefined;
      byProcess[comm] = seen
        ? Object.fromEntries(Object.entries(fp).map(([k, v]) => [k, v + seen[k as keyof typeof fp]]))
        : fp;
    }
    const delta = (name: string) => (hostAfter[name] ?? 0) - (hostBefore[name] ?? 0);
    t.diagnostic(
      JSON.stringify(
        {
          total,
          idleCores: Number(idleCores.toFixed(3)),
          otherClustersRunning: others,
          hostDelta: {
            memoryMiB: Math.round(delta("memory") / 2 ** 20),
            conntrack: delta("net.netfilter.nf_conntrack_max"),
            neighbours: delta("net.ipv4.neigh.default.gc_thresh3"),
            tasks: delta("kernel.pid_max"),
            files: delta("fs.file-max"),
            inotifyInstances: delta("fs.inotify.max_user_instances"),
            inotifyWatches: delta("fs.inotify.max_user_watches"),
          },
          byProcess,
        },
        null,
        1,
      ),
    );
    assert.ok(total.inotifyInstances > 0, "the count sees the cluster's instances at all");
    assert.ok(
      total.inotifyInstances <= IDLE_CLUSTER.inotifyInstances,
      `inotify instances ${total.inotifyInstances} > ${IDLE_CLUSTER.inotifyInstances}`,
    );
    const watches = IDLE_CLUSTER.inotifyWatches + others * WATCHES_PER_RUNNING_CLUSTER;
    assert.ok(
      total.inotifyWatches <= watches,
      `inotify watches ${total.inotifyWatches} > ${watches} (${others} other clusters up)`,
    );
    assert.ok(total.tasks <= IDLE_CLUSTER.tasks, `threads ${total.tasks} > ${IDLE_CLUSTER.tasks}`);
    assert.ok(total.openFiles <= IDLE_CLUSTER.openFiles, `open files ${total.openFiles} > ${IDLE_CLUSTER.openFiles}`);
  });
});
