import type { ClusterSpec } from "./cluster-spec.js";

/**
 * A cluster as the service knows it: what the owner wants (`desired`), what was last
 * observed (`phase`), and its absolute expiry. Pure data and rules; no I/O.
 */
export const DESIRED_STATES = ["running", "stopped", "terminated"] as const;
export type DesiredState = (typeof DESIRED_STATES)[number];
/** Every phase a cluster can be observed in; the API schema's enum is this list. */
export const PHASES = [
  "pending",
  "provisioning",
  "running",
  "stopping",
  "stopped",
  /** Stopped by the controller after `idleMinutes` with no connection; the next connection (or a start) wakes it. */
  "sleeping",
  "starting",
  "terminating",
  "terminated",
  "failed",
] as const;
export type Phase = (typeof PHASES)[number];

/**
 * What a cluster the server keeps for itself is for: "services", the cluster ephemeral services
 * run in (service/services-cluster.ts). Such a cluster is nobody's (owner ""): no tenant lists it
 * or counts it in a quota, it never expires, never sleeps and is never a pool's; it holds a
 * place on the host like any running cluster.
 */
export const SYSTEM_PURPOSES = ["services"] as const;
export type SystemPurpose = (typeof SYSTEM_PURPOSES)[number];

export interface ClusterRecord {
  id: string;
  owner: string;
  name: string | null;
  spec: ClusterSpec;
  keep: boolean;
  notificationEmail: string | null;
  desired: DesiredState;
  phase: Phase;
  /** Time to live asked for at creation (or the last extend), in minutes. */
  ttlMinutes: number;
  /** Epoch milliseconds. */
  expiresAt: number;
  createdAt: number;
  updatedAt: number;
  lastError: string | null;
  timings: Record<string, number>;
  /** Counts changes of `desired` (user operations, expiry): a redone operation keeps it, so its notification is not sent twice. */
  generation: number;
  /** The owner's key/value labels, for finding clusters again. */
  labels: Record<string, string>;
  /** A warm-pool cluster no user has claimed yet (the pool's clusters are not listed or counted as users'). */
  pooled: boolean;
  /** Minutes with no connection through the gateway after which the cluster is put to sleep; 0: never. */
  idleMinutes: number;
  /** Epoch ms the cluster last became running (or was claimed from the pool): no idle time counts before it. */
  runningSince: number | null;
  /**
   * Epoch ms the cluster was put to sleep; kept while it wakes (phase starting) and cleared once it
   * runs again or leaves the sleep another way. While set, a start is a wake, which the owner is not told about.
   */
  sleptAt: number | null;
  /**
   * Epoch ms its processes were frozen (idle, nothing of the tenant's running: core/idle.ts
   * mayFreeze); the phase stays `running`. Cleared by the thaw the next connection through the
   * gateway asks for, and by any change of phase.
   */
  frozenAt: number | null;
  /** Set on a cluster the server keeps for itself (SystemPurpose); absent on users' and the pools'. */
  system?: SystemPurpose;
}

/** Whether the server keeps this cluster for itself (no owner, no lifetime, no sleep). */
export function isSystem(r: Pick<ClusterRecord, "system">): boolean {
  return r.system !== undefined;
}

/** Clusters with no lifetime of their own: the pools' (until claimed) and the server's. */
function hasNoLifetime(r: ClusterRecord): boolean {
  return r.pooled || isSystem(r);
}

export type Operation = "stop" | "start" | "extend" | "delete";

/** Why an operation is not allowed now (HTTP 409), or undefined when it is. */
export function conflictFor(op: Operation, r: ClusterRecord): string | undefined {
  if (r.desired === "terminated" || r.phase === "terminated") return `cluster ${r.id} is terminated`;
  // The server keeps it running for as long as it runs; a start (of a failed one) is all anyone may ask.
  if (r.system && op !== "start")
    return `cluster ${r.id} is the server's ${r.system} cluster: it is kept running, with no lifetime; it cannot be ${op === "stop" ? "stopped" : op === "extend" ? "extended" : "deleted"} through the API`;
  switch (op) {
    case "stop":
      return r.desired === "stopped"
        ? `cluster ${r.id} is already ${r.phase === "stopped" ? "stopped" : "stopping"}`
        : undefined;
    case "start":
      // A sleeping cluster is still wanted running; a start wakes it now instead of at the next connection.
      // A failed one (a wake the host had no room for, say) is tried again.
      if (r.phase === "sleeping" || r.phase === "failed") return undefined;
      return r.desired === "running"
        ? `cluster ${r.id} is already ${r.phase === "running" ? "running" : "starting"}`
        : undefined;
    default:
      return undefined;
  }
}

/** What expiry does to a cluster: keep → stopped, otherwise terminated. */
export function expiryOutcome(r: ClusterRecord): DesiredState {
  return r.keep ? "stopped" : "terminated";
}

/**
 * Whether expiry is due and still has something to do. A kept cluster that has expired
 * and stopped stays stopped until started or extended; starting it again requires a new
 * expiry (start extends by the original TTL).
 */
export function expiryDue(r: ClusterRecord, now: number): boolean {
  if (hasNoLifetime(r) || now < r.expiresAt) return false;
  const outcome = expiryOutcome(r);
  if (outcome === "terminated") return r.desired !== "terminated";
  return r.desired === "running";
}

/** The next moment expiry has something to do, for an exact timer (no polling). */
export function nextExpiry(records: ClusterRecord[], now: number): number | undefined {
  let next: number | undefined;
  for (const r of records) {
    if (r.desired === "terminated" || hasNoLifetime(r)) continue;
    if (r.desired === "stopped" && r.keep) continue;
    if (r.expiresAt <= now) return now;
    if (next === undefined || r.expiresAt < next) next = r.expiresAt;
  }
  return next;
}

/** When the expiry warning for this lifetime is due, or undefined when none will be sent. */
export function warningAt(r: ClusterRecord, warningMs: number): number | undefined {
  if (r.desired !== "running" || hasNoLifetime(r) || warningMs <= 0) return undefined;
  return r.expiresAt - warningMs;
}

/** The next moment the controller has something to do: a warning or an expiry. */
export function nextWakeUp(records: ClusterRecord[], now: number, warningMs: number): number | undefined {
  let next = nextExpiry(records, now);
  for (const r of records) {
    const w = warningAt(r, warningMs);
    if (w !== undefined && w > now && (next === undefined || w < next)) next = w;
  }
  return next;
}

export function isSettled(r: ClusterRecord): boolean {
  return (
    (r.desired === "running" && r.phase === "running") ||
    (r.desired === "running" && r.phase === "sleeping") ||
    (r.desired === "stopped" && r.phase === "stopped") ||
    (r.desired === "terminated" && r.phase === "terminated") ||
    r.phase === "failed"
  );
}
