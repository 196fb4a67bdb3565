import type { ClusterRecord } from "./cluster-record.js";
import { DEFAULT_SIZE, newClusterId, type ClusterSpec } from "./cluster-spec.js";

/**
 * The warm pool: clusters booted ahead of demand with the most asked-for shape (default
 * version and size, not privileged, no workers). A create of that shape claims one, so
 * the user holds a working kubeconfig at once; the controller then boots a replacement.
 * Pure rules here; the store makes the claim atomic and the controller keeps the level.
 */
export function pooledShape(defaultVersion: string): Omit<ClusterSpec, "id"> {
  return { kubernetesVersion: defaultVersion, privileged: false, size: DEFAULT_SIZE, workers: 0 };
}

/** Whether a pooled cluster can serve a request for this shape. `sameVersion` resolves "1.34" vs "v1.34.4". */
export function poolServes(
  pooled: ClusterSpec,
  wanted: Omit<ClusterSpec, "id">,
  sameVersion: (a: string, b: string) => boolean,
): boolean {
  return (
    sameVersion(pooled.kubernetesVersion, wanted.kubernetesVersion) &&
    pooled.privileged === wanted.privileged &&
    pooled.size === wanted.size &&
    pooled.workers === wanted.workers
  );
}

/** A new pool member: no owner, no lifetime until claimed. */
export function newPooledRecord(shape: Omit<ClusterSpec, "id">, now: number, id = newClusterId()): ClusterRecord {
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
  };
}

/** What keeps the pool at its size: how many to boot, which to retire (failed ones, or more than wanted). */
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
