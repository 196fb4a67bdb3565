import type { ClusterRecord } from "./cluster-record.js";
import { newClusterId } from "./cluster-spec.js";
import { defaultPoolShape, type PoolProfile, type PoolShape } from "./pool-profiles.js";
import type { Refusal, RunningCounts } from "./quota.js";

/**
 * Warm pools: clusters booted ahead of demand, one pool per profile (a shape and how many:
 * pool-profiles.ts). A create of a pooled shape claims one, so the user holds a working
 * kubeconfig at once; the controller then boots a replacement of that profile. Pools count
 * against the host's capacity and give way to users' creates when it is full. Pure rules
 * here; the store makes the claim and the admission atomic and the controller keeps the level.
 */

/** The default shape (default version and size, not privileged, no workers): what `--warm-pool <n>` keeps. */
export function pooledShape(defaultVersion: string): PoolShape {
  return defaultPoolShape(defaultVersion);
}

/**
 * Whether a pooled cluster can serve a request for this shape: exact on everything that shapes
 * a cluster (version, size, workers, privileged; egress is server-wide). `sameVersion` resolves
 * "1.34" vs "v1.34.4".
 */
export function poolServes(
  pooled: PoolShape,
  wanted: PoolShape,
  sameVersion: (a: string, b: string) => boolean,
): boolean {
  return (
    sameVersion(pooled.kubernetesVersion, wanted.kubernetesVersion) &&
    pooled.privileged === wanted.privileged &&
    pooled.size === wanted.size &&
    pooled.workers === wanted.workers
  );
}

/**
 * How long the pools boot nothing after a user's cluster became theirs (claimed, started or
 * thawed). Its owner uses it at once: the kubeconfig, then kubectl's first requests. A refill
 * begun in the same moment spent the server's event loop (certificates, files, process
 * starts) and both cores while they ran.
 */
export const POOL_QUIET_AFTER_USE_MS = 2_000;

/** Until when the pools wait (POOL_QUIET_AFTER_USE_MS after the last cluster that became a user's); 0: no wait. */
export function poolQuietUntil(live: readonly ClusterRecord[]): number {
  let until = 0;
  for (const r of live)
    if (!r.pooled && r.runningSince !== null) until = Math.max(until, r.runningSince + POOL_QUIET_AFTER_USE_MS);
  return until;
}

/** A new pool member: no owner, no lifetime until claimed. */
export function newPooledRecord(shape: PoolShape, now: number, id = newClusterId()): ClusterRecord {
  return {
    id,
    owner: "",
    name: null,
    spec: { id, ...shape },
    keep: false,
    notificationEmail: null,
    desired: "running",
    phase: "pending",
    ttlMinutes: 0,
    expiresAt: now,
    createdAt: now,
    updatedAt: now,
    lastError: null,
    timings: {},
    generation: 0,
    labels: {},
    pooled: true,
    idleMinutes: 0,
    runningSince: null,
    sleptAt: null,
    frozenAt: null,
  };
}

/** What keeps one pool at its size: how many to boot, which to retire (failed ones, or the oldest beyond the size). */
export function poolPlan(live: ClusterRecord[], size: number): { boot: number; retire: ClusterRecord[] } {
  const members = live.filter((r) => r.pooled && r.desired === "running");
  const failed = members.filter((r) => r.phase === "failed");
  const healthy = members.filter((r) => r.phase !== "failed");
  const surplus = healthy.length > size ? healthy.slice(0, healthy.length - size) : [];
  return { boot: Math.max(0, size - healthy.length), retire: [...failed, ...surplus] };
}

/** The user's view of a claimed pool member: theirs from now, with their lifetime. */
export function claimPooled(
  r: ClusterRecord,
  claim: Pick<ClusterRecord, "owner" | "name" | "keep" | "notificationEmail" | "ttlMinutes" | "labels" | "idleMinutes">,
  now: number,
): ClusterRecord {
  return {
    ...r,
    ...claim,
    pooled: false,
    createdAt: now,
    updatedAt: now,
    expiresAt: now + claim.ttlMinutes * 60_000,
    // Its idle time counts from the claim: it ran unused in the pool until now.
    runningSince: now,
  };
}

/** The profile a pooled cluster belongs to: the one whose shape it has (none: its profile was removed). */
export function profileOf(
  spec: PoolShape,
  profiles: readonly PoolProfile[],
  sameVersion: (a: string, b: string) => boolean,
): PoolProfile | undefined {
  return profiles.find((p) => poolServes(spec, p.shape, sameVersion));
}

/**
 * What holds room on the host, counted as the store counts at admission (store/clusters.ts
 * runningCounts): users' clusters wanted running and not asleep (with the server's own, which
 * hold a place as users' do: `users` counts them), and pool members wanted running; of the
 * users', those frozen.
 */
export function hostLoad(live: readonly ClusterRecord[]): { users: number; pooled: number; frozen: number } {
  const wanted = live.filter((r) => r.desired === "running" && r.phase !== "terminated");
  const users = wanted.filter((r) => !r.pooled && r.phase !== "sleeping");
  return {
    users: users.length,
    pooled: wanted.filter((r) => r.pooled).length,
    // Of the users' clusters, those frozen (core/idle.ts frozenToSleep: the first to give way).
    frozen: users.filter((r) => r.phase === "running" && r.frozenAt !== null).length,
  };
}

/**
 * Whether a pool may boot one more member now. It must leave the last place free: a user's
 * create then finds room at once, instead of waiting behind a pool member's teardown.
 */
export function poolBootRefusal(counts: RunningCounts, hostCapacity: number): Refusal | undefined {
  if (counts.total + counts.pooled + 1 < hostCapacity) return undefined;
  return {
    type: "capacity",
    message: `a pool boot would take the host's last place (${counts.total} users' and ${counts.pooled} pooled clusters of ${hostCapacity})`,
  };
}

/**
 * How many pool members must go for one more user's cluster to fit (0: it fits as it is).
 * Asked once the user's own limits and the users' count allowed it (quota.ts capacityRefusal).
 */
export function roomToFree(counts: RunningCounts, hostCapacity: number): number {
  return Math.min(counts.pooled, Math.max(0, counts.total + counts.pooled + 1 - hostCapacity));
}

/**
 * Pool members in the order they give way to users: those that cost least to lose first
 * (failed, not yet booted, booting), then ready ones from the pool with the most ready (every
 * profile keeps a ready member as long as it can), newest first.
 */
export function giveWayOrder(
  members: readonly ClusterRecord[],
  profiles: readonly PoolProfile[],
  sameVersion: (a: string, b: string) => boolean,
): ClusterRecord[] {
  const rank = (r: ClusterRecord) => ["failed", "pending", "provisioning"].indexOf(r.phase) + 1 || 4;
  const key = (r: ClusterRecord) => profileOf(r.spec, profiles, sameVersion)?.label ?? "";
  const sizes = new Map<string, number>();
  for (const r of members) if (r.phase === "running") sizes.set(key(r), (sizes.get(key(r)) ?? 0) + 1);
  return [...members].sort(
    (a, b) => rank(a) - rank(b) || (sizes.get(key(b)) ?? 0) - (sizes.get(key(a)) ?? 0) || b.createdAt - a.createdAt,
  );
}

export type RetireReason = "failed" | "surplus" | "profile removed" | "host full";

export interface PoolsPlan {
  retire: { record: ClusterRecord; why: RetireReason }[];
  /** The profile to boot a member of now, if any. */
  boot: PoolProfile | undefined;
}

/**
 * What keeps every pool at its level, given the host's capacity:
 * - members of no profile (removed since they were booted) retire; so do failed ones, and the
 *   oldest beyond a profile's count;
 * - pools count against the capacity: when users' clusters came in past them (wakes are not
 *   admitted, a capacity lowered at restart), members give way until the host is not over;
 * - one boot at a time (a boot is CPU-bound and competes with users' creates for the same
 *   cores), the emptiest pool first: each profile gets its first member before any gets a second;
 * - never a boot into the host's last place (poolBootRefusal), nor for a profile that may not
 *   boot now (`mayBoot`: waiting after failures).
 */
export function poolsPlan(
  live: readonly ClusterRecord[],
  profiles: readonly PoolProfile[],
  sameVersion: (a: string, b: string) => boolean,
  hostCapacity: number,
  mayBoot: (p: PoolProfile) => boolean = () => true,
): PoolsPlan {
  const retire: PoolsPlan["retire"] = [];
  const byProfile = new Map<PoolProfile, ClusterRecord[]>(profiles.map((p) => [p, []]));
  for (const r of live) {
    if (!r.pooled || r.desired !== "running" || r.phase === "terminated") continue;
    const p = profileOf(r.spec, profiles, sameVersion);
    if (p) byProfile.get(p)!.push(r);
    else retire.push({ record: r, why: "profile removed" });
  }
  let kept: ClusterRecord[] = [];
  const wanted: { profile: PoolProfile; index: number }[] = [];
  for (const [profile, members] of byProfile) {
    const plan = poolPlan(members, profile.count);
    for (const r of plan.retire) retire.push({ record: r, why: r.phase === "failed" ? "failed" : "surplus" });
    const healthy = members.filter((r) => !plan.retire.includes(r));
    kept.push(...healthy);
    for (let i = 0; i < plan.boot; i++) wanted.push({ profile, index: healthy.length + i });
  }
  const { users } = hostLoad(live);
  const over = users + kept.length - hostCapacity;
  if (over > 0) {
    const leaving = giveWayOrder(kept, profiles, sameVersion).slice(0, over);
    for (const r of leaving) retire.push({ record: r, why: "host full" });
    kept = kept.filter((r) => !leaving.includes(r));
  }
  const booting = kept.some((r) => r.phase === "pending" || r.phase === "provisioning");
  const refused = poolBootRefusal({ owner: 0, total: users, pooled: kept.length }, hostCapacity);
  // Stable sort: among profiles missing their n-th member alike, the order they were given in.
  const next = wanted.filter((w) => mayBoot(w.profile)).sort((a, b) => a.index - b.index)[0];
  return { retire, boot: booting || refused ? undefined : next?.profile };
}
