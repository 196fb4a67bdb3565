import type { ClusterSpec } from "./cluster-spec.js";

/** What a token may do. `null` means no limit of that kind. Admin tokens have none. */
export interface TokenLimits {
  /** Clusters that may run (or be on their way to running) at once. */
  maxClusters: number | null;
  maxTtlMinutes: number | null;
  /** Size presets the token may ask for. */
  sizes: string[] | null;
  privileged: boolean;
  /** Ephemeral services (issue 14) that may exist at once. */
  maxServices: number | null;
  /** The longest lifetime a service may be given (at create or extend). */
  maxServiceMinutes: number | null;
}

export const NO_LIMITS: TokenLimits = {
  maxClusters: null,
  maxTtlMinutes: null,
  sizes: null,
  privileged: true,
  maxServices: null,
  maxServiceMinutes: null,
};

/**
 * A tenant token created without explicit limits: three clusters at once, any size, a day at
 * most, not privileged; five services at once, each for a day at most.
 */
export const DEFAULT_TENANT_LIMITS: TokenLimits = {
  maxClusters: 3,
  maxTtlMinutes: 24 * 60,
  sizes: null,
  privileged: false,
  maxServices: 5,
  maxServiceMinutes: 24 * 60,
};

/** Who is calling: a token's identity and its limits. */
export interface TokenIdentity {
  id: number;
  name: string;
  admin: boolean;
  limits: TokenLimits;
}

/**
 * Clusters counted at the moment of a decision. Sleeping clusters are their owner's (a wake
 * must never find its place in the quota taken) but hold nothing on the host, so they count
 * for the token and not for the host's capacity. A wake is not admitted again: it is tried,
 * and the runtime's own room check (kernel limits, addresses) is what can refuse it.
 */
export interface RunningCounts {
  /** The caller's clusters that run, are on their way to running, or sleep. */
  owner: number;
  /**
   * Every tenant's clusters that run or are on their way to running (sleeping ones not), and the
   * server's own (the services cluster: nobody's quota, but a place on the host like any other).
   */
  total: number;
  /**
   * Warm-pool clusters that run or are on their way (nobody's until claimed): they hold room on
   * the host, so they count against its capacity, and give it up to a user's create (warm-pool.ts).
   */
  pooled: number;
  /**
   * Of `total`, users' clusters frozen now (idle, nothing of the tenant's running): they hold
   * their memory, and give their place up to a create by going to sleep (idle.ts frozenToSleep).
   */
  frozen?: number;
}

export interface Refusal {
  type: "forbidden" | "capacity";
  message: string;
}

/** Why this token may not have a cluster of this shape and lifetime (403), or undefined. */
export function policyRefusal(
  who: TokenIdentity,
  spec: Pick<ClusterSpec, "privileged" | "size">,
  ttlMinutes: number,
): Refusal | undefined {
  const l = who.limits;
  if (spec.privileged && !l.privileged)
    return { type: "forbidden", message: `token "${who.name}" may not create privileged clusters (privileged)` };
  if (l.sizes && !l.sizes.includes(spec.size)) {
    return {
      type: "forbidden",
      message: `token "${who.name}" may not create size "${spec.size}" (size); allowed: ${l.sizes.join(", ")}`,
    };
  }
  if (l.maxTtlMinutes !== null && ttlMinutes > l.maxTtlMinutes) {
    return {
      type: "forbidden",
      message: `token "${who.name}" may keep clusters for at most ${l.maxTtlMinutes} minutes (ttlMinutes ${ttlMinutes})`,
    };
  }
  return undefined;
}

/**
 * Why one more running cluster is not possible now: the token's quota (403) or the host's
 * capacity (429, worth retrying later), or undefined. Users' clusters only: the warm pool's
 * give way to them (warm-pool.ts roomToFree), so only users can fill the host for a user.
 */
export function capacityRefusal(
  who: TokenIdentity,
  counts: Pick<RunningCounts, "owner" | "total">,
  hostCapacity: number,
): Refusal | undefined {
  const max = who.limits.maxClusters;
  if (max !== null && counts.owner >= max) {
    return {
      type: "forbidden",
      message: `quota: token "${who.name}" may run ${max} cluster(s) at once and runs ${counts.owner} (sleeping ones count); stop or delete one first`,
    };
  }
  if (counts.total >= hostCapacity) {
    return {
      type: "capacity",
      message: `host capacity reached: ${counts.total} of ${hostCapacity} clusters are running; try again when one stops`,
    };
  }
  return undefined;
}
