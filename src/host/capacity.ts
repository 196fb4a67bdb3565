/**
 * How many clusters this host holds: for every resource clusters draw on, those already
 * running plus as many more as what is free takes, and the host holds the least of these.
 * Pure (figures in, figures out) so the rule is tested with made-up hosts; the figures come
 * from host-budgets.ts.
 */

/** One resource every cluster takes a share of. */
export interface ResourceBudget {
  /** The sysctl that caps it (fs.inotify.max_user_instances), or "memory", "CPU at idle", "address ranges". */
  name: string;
  /**
   * "limit": a kernel limit or a fixed range; a cluster past it fails to boot. "estimate":
   * memory and idle CPU; past it clusters still boot, but the host is overcommitted.
   */
  kind: "limit" | "estimate";
  /** The whole budget: the sysctl's value, the memory, the CPU share idle clusters may have. */
  total: number;
  /** Taken now, host-wide (by clusters and everything else). */
  inUse: number;
  /** Kept for the host itself when counting capacity (not when checking room for one more). */
  reserve: number;
  /** What one idle cluster of one node takes, measured. */
  perCluster: number;
  /**
   * What a cluster takes on top per cluster already running: every kubelet's cAdvisor
   * watches every cgroup on the host, its own cluster's and all the others', so inotify
   * watches grow with the square of the clusters. 0 (or absent) for the linear resources.
   */
  perRunningCluster?: number;
  /** Unit of total/inUse/perCluster, for messages ("" for counts). */
  unit: string;
  /** The command that raises it, for limits that can be raised. */
  fix?: string;
}

export interface ResourceCapacity {
  budget: ResourceBudget;
  /** Clusters this resource allows in all: those running and those that fit in what is free. */
  clusters: number;
}

export interface CapacityEstimate {
  /** Clusters the host holds at once: the least any resource allows. */
  capacity: number;
  /** The resource that allows the fewest. */
  boundBy: ResourceCapacity;
  /** The least the hard limits allow (a create past it fails), and which one. */
  limitsBound?: ResourceCapacity;
  each: ResourceCapacity[];
}

/** Never counted further: more than any host holds (the address ranges stop at 120). */
const MAX_COUNTED = 100_000;

/**
 * Clusters that still fit in a budget beside what it holds now (and its reserve), when
 * `running` clusters are up and the next one takes need + growth × (clusters up by then).
 */
function clustersThatFit(
  b: ResourceBudget,
  need: number,
  growth: number,
  running: number,
  withReserve: boolean,
): number {
  let free = b.total - b.inUse - (withReserve ? b.reserve : 0);
  if (need <= 0 && growth <= 0) return Number.POSITIVE_INFINITY;
  let n = 0;
  for (let cost = need + growth * running; free >= cost && n < MAX_COUNTED; cost += growth) {
    free -= cost;
    n++;
  }
  return n;
}

/**
 * `running`: clusters up now, whose shares are in the budgets' inUse already (for CPU at
 * idle, which is not measured but estimated, the caller puts running × perCluster there).
 */
export function estimateCapacity(budgets: ResourceBudget[], running: number): CapacityEstimate {
  if (budgets.length === 0) throw new Error("estimateCapacity: no budgets");
  const each = budgets.map((budget) => ({
    budget,
    clusters: running + clustersThatFit(budget, budget.perCluster, budget.perRunningCluster ?? 0, running, true),
  }));
  const least = (list: ResourceCapacity[]) => list.reduce((a, b) => (b.clusters < a.clusters ? b : a));
  const limits = each.filter((c) => c.budget.kind === "limit");
  const boundBy = least(each);
  return { capacity: boundBy.clusters, boundBy, limitsBound: limits.length ? least(limits) : undefined, each };
}

/**
 * Why one more cluster cannot boot now (empty when it can): every hard limit, and memory,
 * must have its share free. `need` is that cluster's share of a budget, with `running`
 * clusters up. Idle CPU is no reason to refuse.
 */
export function roomRefusals<B extends ResourceBudget>(budgets: B[], need: (b: B) => number): string[] {
  const refusals: string[] = [];
  for (const b of budgets) {
    if (b.kind === "estimate" && b.name !== "memory") continue;
    const wanted = need(b);
    if (clustersThatFit(b, wanted, 0, 0, false) >= 1) continue;
    const free = Math.max(0, b.total - b.inUse);
    refusals.push(
      `${b.name}: ${fmt(free, b.unit)} free of ${fmt(b.total, b.unit)}, a cluster needs ~${fmt(wanted, b.unit)}` +
        (b.fix ? `; raise it: ${b.fix}` : ""),
    );
  }
  return refusals;
}

/** "1.5 GiB", "0.08 core", "128". */
export function fmt(n: number, unit: string): string {
  if (unit === "bytes") return n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(1)} GiB` : `${Math.round(n / 2 ** 20)} MiB`;
  if (unit === "cores") return `${Number(n.toFixed(2))} core${n === 1 ? "" : "s"}`;
  return String(Math.round(n));
}

/** One line: "18 clusters, bound by CPU at idle (0.08 core per cluster; 1.5 cores for idle clusters)". */
export function describeBound(c: ResourceCapacity): string {
  const b = c.budget;
  return (
    `${c.clusters} cluster${c.clusters === 1 ? "" : "s"}, bound by ${b.name} (${fmt(b.total, b.unit)}; ` +
    `${fmt(b.inUse, b.unit)} in use; ~${fmt(b.perCluster, b.unit)} per idle cluster)`
  );
}
