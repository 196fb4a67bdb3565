import { describeBound, estimateCapacity, fmt } from "./capacity.js";
import { compressedSwap, compressedSwapPossible } from "./compressed-swap.js";
import type { HostCheck } from "./host-check.js";
import { readHostBudgets, withIdleClustersFrozen } from "./host-budgets.js";
import { readSysctl, sysctlFix, wantedSysctls } from "./host-sysctls.js";

/**
 * Each host limit setup raises (scripts/host-sysctls.conf), and how many clusters the host
 * holds as it is now, and what bounds that. A low limit does not block (clusters still run,
 * fewer of them), so these are warnings with the command that raises them.
 */
export async function hostLimitChecks(): Promise<HostCheck[]> {
  const checks: HostCheck[] = [];
  for (const s of await wantedSysctls()) {
    const current = await readSysctl(s.key);
    if (current === undefined) {
      checks.push({
        name: `sysctl ${s.key}`,
        ok: false,
        blocking: false,
        detail: `not in this kernel (module not loaded?); ${s.why}`,
        fix: "scripts/setup",
      });
      continue;
    }
    checks.push({
      name: `sysctl ${s.key}`,
      ok: current >= s.value,
      blocking: false,
      detail: current >= s.value ? `${current}` : `${current}, want >= ${s.value}: ${s.why}`,
      fix: sysctlFix(s.key, s.value),
    });
  }
  // As the server counts it by default (idle clusters frozen, --freeze-after, and compressed
  // when the host has or can have compressed swap): idle CPU bounds nothing.
  const { budgets, running } = await readHostBudgets();
  const swap = await compressedSwap();
  const frozenCompressed = await compressedSwapPossible(swap);
  const est = estimateCapacity(withIdleClustersFrozen(budgets, { frozenCompressed }), running);
  const awake = estimateCapacity(budgets, running);
  const limits = est.limitsBound;
  // The kernel limits should never be what stops clusters first: memory or CPU should (the
  // address ranges, which no setting raises, may).
  const limitsFirst =
    limits?.budget.fix !== undefined &&
    limits.clusters < Math.min(...est.each.filter((c) => c.budget.kind === "estimate").map((c) => c.clusters));
  checks.push({
    name: "capacity",
    ok: est.capacity >= 1 && !limitsFirst,
    blocking: false,
    detail:
      `this host holds ${describeBound(est.boundBy)}, ${running} running now` +
      (limits && limits !== est.boundBy ? `; the kernel limits alone allow ${describeBound(limits)}` : "") +
      (awake.capacity < est.capacity
        ? `; with idle clusters not frozen (server --freeze-after 0): ${describeBound(awake.boundBy)}`
        : ""),
    fix: limitsFirst ? limits?.budget.fix : undefined,
  });
  checks.push({
    name: "compressed swap for frozen clusters",
    ok: frozenCompressed,
    blocking: false,
    detail:
      swap.state === "on"
        ? `${swap.device}, ${swap.algorithm}, ${fmt(swap.sizeBytes, "bytes")}; holds ${fmt(swap.storedBytes, "bytes")} in ${fmt(swap.memoryUsedBytes, "bytes")}`
        : frozenCompressed
          ? `${swap.reason}; the server sets up zram at its start`
          : `${swap.reason}; frozen clusters keep their memory as it is`,
  });
  return checks;
}
