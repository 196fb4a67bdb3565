import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { mountsUnder } from "../../host/mounts.js";
import { dataDir } from "../../util/paths.js";
import { clusterCgroup, leftoverCgroups, memoryUsage, pidsIn } from "./cgroups.js";
import { ClusterLayout, clustersDir } from "./layout.js";
import { clusterNetnsNames, leftoverNetwork, type ClusterNetwork } from "./network.js";
import { Supervisor } from "./supervisor.js";
import { runcStateOf } from "./task-state.js";

/**
 * What the host holds of the local runtime's clusters, for tests, the bench and leak
 * checks: nothing a RuntimeDriver needs. `dataDirectory` is the runtime's (LocalRuntime's dataDir).
 */
export class HostInspection {
  private readonly base: string;

  constructor(dataDirectory?: string) {
    this.base = dataDirectory ?? dataDir();
  }

  private layout(id: string): ClusterLayout {
    return new ClusterLayout(id, clustersDir(this.base));
  }

  /** Everything of the cluster still on the host; empty after destroy. */
  async leftovers(clusterId: string, network?: ClusterNetwork): Promise<string[]> {
    const layout = this.layout(clusterId);
    const left: string[] = [];
    const pids = await pidsIn(clusterCgroup(clusterId));
    if (pids.length) left.push(`processes ${pids.join(", ")}`);
    for (const m of await mountsUnder(layout.root)) left.push(`mount ${m}`);
    left.push(...(await leftoverNetwork(clusterId, network)));
    for (const name of await clusterNetnsNames(clusterId)) {
      if (!left.includes(`network namespace ${name}`)) left.push(`network namespace ${name}`);
    }
    for (const c of await leftoverCgroups(clusterCgroup(clusterId))) left.push(`cgroup ${c}`);
    for (const dir of await runcStateOf(layout.root)) left.push(`runc state ${dir}`);
    if (existsSync(layout.root)) left.push(`directory ${layout.root}`);
    return left;
  }

  /** runc state in /run of the cluster's containers (none once it stopped: task-state.ts). */
  runcState(clusterId: string): Promise<string[]> {
    return runcStateOf(this.layout(clusterId).root);
  }

  /** Resident memory of all the cluster's processes (its cgroup), and per component. */
  async memory(clusterId: string): Promise<{ totalRssBytes: number; cgroupUsageBytes: number }> {
    const usage = await memoryUsage(clusterCgroup(clusterId));
    let total = 0;
    for (const pid of await pidsIn(clusterCgroup(clusterId))) {
      const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
      total += Number(status.match(/^VmRSS:\s+(\d+) kB/m)?.[1] ?? 0) * 1024;
    }
    return { totalRssBytes: total, cgroupUsageBytes: usage?.usageBytes ?? 0 };
  }

  /** The pid of a running component's process (not its supervisor), if it runs. */
  async componentPid(clusterId: string, component: string): Promise<number | undefined> {
    const layout = this.layout(clusterId);
    const sup = new Supervisor(layout.runDir, layout.logDir);
    if (!(await sup.isRunning(component))) return undefined;
    const pid = await sup.pid(component, "child");
    return pid && existsSync(`/proc/${pid}`) ? pid : undefined;
  }
}
