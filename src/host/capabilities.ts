import { readFileSync } from "node:fs";

const CAP_SYS_RESOURCE = 24n;

/**
 * Whether this process may lower oom_score_adj (CAP_SYS_RESOURCE). Some sandboxed hosts
 * drop it; then containerd must cap containers' scores at its own (restrict_oom_score_adj)
 * and kubelet/kube-proxy must not try to protect themselves, or every pod sandbox fails
 * with "failed to update /proc/self/oom_score_adj: Permission denied".
 */
export function canLowerOomScore(): boolean {
  const status = readFileSync("/proc/self/status", "utf8");
  const eff = status.match(/^CapEff:\s+([0-9a-f]+)/m)?.[1];
  if (!eff) return false;
  return ((BigInt(`0x${eff}`) >> CAP_SYS_RESOURCE) & 1n) === 1n;
}
