import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { describeBound, estimateCapacity, roomRefusals, type ResourceBudget } from "./capacity.js";

const GiB = 2 ** 30;
const MiB = 2 ** 20;

/** The host of issue 15 as it was: 24 GiB, 2 cores, root's 128 inotify instances, ~16 per cluster. */
function freshHost(overrides: Partial<Record<string, Partial<ResourceBudget>>> = {}): ResourceBudget[] {
  const budgets: ResourceBudget[] = [
    {
      name: "memory",
      kind: "estimate",
      total: 24 * GiB,
      inUse: 1 * GiB,
      reserve: 2 * GiB,
      perCluster: 340 * MiB,
      unit: "bytes",
    },
    { name: "CPU at idle", kind: "estimate", total: 2 * 0.75, inUse: 0, reserve: 0, perCluster: 0.08, unit: "cores" },
    {
      name: "fs.inotify.max_user_instances",
      kind: "limit",
      total: 128,
      inUse: 10,
      reserve: 0,
      perCluster: 16,
      unit: "",
      fix: "sysctl -w fs.inotify.max_user_instances=8192",
    },
    { name: "kernel.pid_max", kind: "limit", total: 32768, inUse: 200, reserve: 0, perCluster: 300, unit: "" },
    { name: "address ranges", kind: "limit", total: 120, inUse: 0, reserve: 0, perCluster: 1, unit: "" },
  ];
  return budgets.map((b) => ({ ...b, ...overrides[b.name] }));
}

describe("estimateCapacity", () => {
  it("is the least any resource allows: 7 clusters on issue 15's host, bound by inotify instances", () => {
    const est = estimateCapacity(freshHost(), 0);
    // (128 - 10) / 16 = 7.4: the 8th cluster's kubelet found no instance left.
    assert.equal(est.capacity, 7);
    assert.equal(est.boundBy.budget.name, "fs.inotify.max_user_instances");
    assert.equal(est.limitsBound?.budget.name, "fs.inotify.max_user_instances");
    assert.match(
      describeBound(est.boundBy),
      /^7 clusters, bound by fs\.inotify\.max_user_instances \(128; 10 in use; ~16 per idle cluster\)$/,
    );
  });

  it("with the limits raised, idle CPU bounds before memory, and the kernel limits allow more", () => {
    const est = estimateCapacity(
      freshHost({ "fs.inotify.max_user_instances": { total: 8192 }, "kernel.pid_max": { total: 4194304 } }),
      0,
    );
    // 1.5 cores / 0.08 = 18.75; memory (24 - 1 - 2 GiB) / 340 MiB = 63.2; addresses 120.
    assert.equal(est.capacity, 18);
    assert.equal(est.boundBy.budget.name, "CPU at idle");
    assert.equal(est.limitsBound?.budget.name, "address ranges");
    assert.equal(est.limitsBound?.clusters, 120);
    const memory = est.each.find((c) => c.budget.name === "memory");
    assert.equal(memory?.clusters, 63);
  });

  it("counts running clusters once: their share is in use already, and they add to what still fits", () => {
    // 3 clusters up: 3 × 16 instances in use beside the host's 10, 3 × 0.08 core busy.
    const est = estimateCapacity(
      freshHost({
        "fs.inotify.max_user_instances": { inUse: 10 + 3 * 16 },
        "CPU at idle": { inUse: 3 * 0.08 },
      }),
      3,
    );
    assert.equal(est.capacity, 7);
    assert.equal(est.each.find((c) => c.budget.name === "CPU at idle")?.clusters, 18);
  });

  it("a resource already overdrawn allows only the clusters running, never fewer", () => {
    const est = estimateCapacity(freshHost({ memory: { inUse: 23 * GiB } }), 2);
    assert.equal(est.capacity, 2);
    assert.equal(est.boundBy.budget.name, "memory");
  });
});

describe("estimateCapacity, for a resource that grows with the clusters already running", () => {
  // Every kubelet watches every cluster's cgroups: the (j+1)th cluster takes 130 + 150·j watches.
  const watches = (inUse: number): ResourceBudget => ({
    name: "fs.inotify.max_user_watches",
    kind: "limit",
    total: 192536,
    inUse,
    reserve: 0,
    perCluster: 130,
    perRunningCluster: 150,
    unit: "",
  });
  const heldBy = (n: number) => 130 * n + 75 * n * (n - 1);

  it("fits as many as the sum of the growing shares allows", () => {
    // 130·n + 75·n·(n-1) <= 192536 up to n = 50 (190250), not 51 (197880).
    assert.equal(heldBy(50), 190250);
    assert.equal(estimateCapacity([watches(0)], 0).capacity, 50);
  });

  it("gives the same capacity whatever number of clusters runs already", () => {
    for (const running of [1, 5, 30, 50]) {
      assert.equal(estimateCapacity([watches(heldBy(running))], running).capacity, 50, `with ${running} running`);
    }
  });
});

describe("roomRefusals", () => {
  it("names each exhausted limit with what is free, what a cluster needs and the fix", () => {
    const budgets = freshHost({ "fs.inotify.max_user_instances": { inUse: 120 } });
    const refusals = roomRefusals(budgets, (b) => b.perCluster);
    assert.deepEqual(refusals, [
      "fs.inotify.max_user_instances: 8 free of 128, a cluster needs ~16; raise it: sysctl -w fs.inotify.max_user_instances=8192",
    ]);
  });

  it("ignores the reserve and idle CPU: a cluster that can boot is not refused", () => {
    // Memory within the reserve, CPU overcommitted: capacity says no more, but one would boot.
    const budgets = freshHost({ memory: { inUse: 23 * GiB }, "CPU at idle": { inUse: 3 } });
    assert.deepEqual(
      roomRefusals(budgets, (b) => b.perCluster),
      [],
    );
  });

  it("refuses when memory itself is short, and asks more of every limit for more nodes", () => {
    const budgets = freshHost({
      memory: { inUse: 24 * GiB - 100 * MiB },
      "fs.inotify.max_user_instances": { inUse: 100 },
    });
    // Three nodes need twice the one-node figures here: 32 instances, of 28 free.
    const refusals = roomRefusals(budgets, (b) => b.perCluster * 2);
    assert.equal(refusals.length, 2);
    assert.match(refusals[0], /^memory: 100 MiB free of 24\.0 GiB, a cluster needs ~680 MiB$/);
    assert.match(refusals[1], /^fs\.inotify\.max_user_instances: 28 free of 128, a cluster needs ~32;/);
  });
});
