import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { estimateCapacity } from "./capacity.js";
import { FROZEN_COMPRESSED_MEMORY_BYTES, IDLE_CLUSTER } from "./cluster-footprint.js";
import { HOST_MEMORY_RESERVE, withIdleClustersFrozen, type HostBudgets } from "./host-budgets.js";

const GiB = 2 ** 30;

/** A 24 GiB, 2-core host with nothing running and the limits setup raises. */
function host(): HostBudgets["budgets"] {
  return [
    {
      name: "memory",
      kind: "estimate",
      total: 24 * GiB,
      inUse: 1 * GiB,
      reserve: HOST_MEMORY_RESERVE,
      perCluster: IDLE_CLUSTER.memoryBytes,
      unit: "bytes",
      figure: "memoryBytes",
    },
    {
      name: "CPU at idle",
      kind: "estimate",
      total: 1.5,
      inUse: 0,
      reserve: 0,
      perCluster: IDLE_CLUSTER.cpuCores,
      unit: "cores",
      figure: "cpuCores",
    },
    {
      name: "address ranges",
      kind: "limit",
      total: 500,
      inUse: 0,
      reserve: 0,
      perCluster: 1,
      unit: "",
      figure: "addressRanges",
    },
  ];
}

describe("withIdleClustersFrozen", () => {
  it("drops idle CPU: frozen clusters use none, so memory bounds", () => {
    const awake = estimateCapacity(host(), 0);
    const frozen = estimateCapacity(withIdleClustersFrozen(host()), 0);
    assert.equal(awake.boundBy.budget.name, "CPU at idle");
    assert.equal(awake.capacity, 21); // 1.5 / 0.07
    assert.equal(frozen.boundBy.budget.name, "memory");
    assert.equal(frozen.capacity, Math.floor((21 * GiB) / IDLE_CLUSTER.memoryBytes));
  });

  it("with their memory compressed, counts each held cluster at its compressed share and keeps room for those the idle CPU lets be awake", () => {
    const budgets = withIdleClustersFrozen(host(), { frozenCompressed: true });
    const memory = budgets.find((b) => b.figure === "memoryBytes")!;
    assert.equal(memory.perCluster, FROZEN_COMPRESSED_MEMORY_BYTES);
    const awakeRoom = 21 * (IDLE_CLUSTER.memoryBytes - FROZEN_COMPRESSED_MEMORY_BYTES);
    assert.equal(memory.reserve, HOST_MEMORY_RESERVE + awakeRoom);
    const est = estimateCapacity(budgets, 0);
    assert.equal(est.capacity, Math.floor((21 * GiB - awakeRoom) / FROZEN_COMPRESSED_MEMORY_BYTES));
    assert.ok(est.capacity > estimateCapacity(withIdleClustersFrozen(host()), 0).capacity);
  });

  it("keeps every other budget as it is", () => {
    const before = host().filter((b) => b.figure === "addressRanges");
    const after = withIdleClustersFrozen(host(), { frozenCompressed: true }).filter(
      (b) => b.figure === "addressRanges",
    );
    assert.deepEqual(after, before);
  });
});
