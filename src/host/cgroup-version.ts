import { statfsSync } from "node:fs";
import type { CgroupVersion } from "../core/kubelet-policy.js";

/** statfs(2) f_type of a cgroup2 mount (linux/magic.h CGROUP2_SUPER_MAGIC). */
const CGROUP2_SUPER_MAGIC = 0x63677270;
const CGROUP_ROOT = "/sys/fs/cgroup";

let known: CgroupVersion | undefined;

/**
 * The host's cgroup version, decided as the kubelet decides it: cgroup v2 only when
 * /sys/fs/cgroup itself is a cgroup2 mount (opencontainers/cgroups utils.go
 * IsCgroup2UnifiedMode, which the kubelet's configuration validation calls before it
 * refuses cgroup v1: pkg/kubelet/apis/config/validation/validation_linux.go). A hybrid host
 * (cgroup2 under /sys/fs/cgroup/unified) is v1 to the kubelet, and so here. Read once per process.
 */
export function hostCgroupVersion(): CgroupVersion {
  if (known) return known;
  let type: number | undefined;
  try {
    type = statfsSync(CGROUP_ROOT).type;
  } catch {
    // No /sys/fs/cgroup at all: the kubelet's check says v1 then too (IsNotExist → not unified).
    type = undefined;
  }
  known = type === CGROUP2_SUPER_MAGIC ? "v2" : "v1";
  return known;
}
