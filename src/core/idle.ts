import type { ClusterRecord, Phase } from "./cluster-record.js";

/**
 * Sleep when idle: the rules, pure. A cluster with `idleMinutes` > 0 that has had no
 * connection through the gateway for that long is stopped with phase `sleeping` (its state
 * kept, its TTL still running); the gateway holds the next connection and asks for a wake.
 */

/**
 * Connections through the gateway as the rules need them: the shape of the gateway's
 * GatewayActivity (src/gateway/gateway-files.ts), restated so that core imports nothing outside it.
 */
export interface ConnectionActivity {
  /** Epoch ms the gateway started: it knows of no connection before. */
  since: number;
  clusters: Record<string, { lastActiveAt: number; open: number }>;
}

/** How often the controller looks for idle clusters: a sleep lands within this of its due time. */
export const IDLE_CHECK_MS = 10_000;

/** The most a request (REST `idleMinutes`, SMEK-style `minutes-to-idle`, CLI `--idle`) may ask for: a day. */
export const MAX_IDLE_MINUTES = 24 * 60;

/** Whether the controller should look at this cluster's activity at all. */
export function mayFallAsleep(r: ClusterRecord): boolean {
  // The server's own clusters serve others' traffic; none of it is theirs to be idle on.
  return !r.pooled && !r.system && r.idleMinutes > 0 && r.desired === "running" && r.phase === "running";
}

/**
 * The last moment the cluster was in use, as far as anyone knows: its last connection through
 * the gateway, or, when later, the gateway's own start (it knows nothing from before) and the
 * moment the cluster last became running (a woken or started cluster gets its full idle time).
 */
export function lastActiveAt(r: ClusterRecord, activity: ConnectionActivity): number {
  return Math.max(activity.clusters[r.id]?.lastActiveAt ?? 0, activity.since, r.runningSince ?? r.createdAt);
}

/**
 * Whether the cluster is to be put to sleep now. Without a gateway (no activity known)
 * nothing is: idleness cannot be told from no information. An open connection (a watch,
 * `logs -f`) keeps it awake however long it has been since it was opened.
 */
export function isIdle(r: ClusterRecord, activity: ConnectionActivity | undefined, now: number): boolean {
  if (!activity || !mayFallAsleep(r)) return false;
  if ((activity.clusters[r.id]?.open ?? 0) > 0) return false;
  return now - lastActiveAt(r, activity) >= r.idleMinutes * 60_000;
}

/**
 * What a phase change does to the sleep fields: becoming running starts the idle count
 * (`runningSince`); `sleptAt` is set by the sleep itself, kept through the wake (`starting`),
 * and cleared by anything else, so that only a start out of sleep counts as a wake.
 */
export function sleepFieldsFor(
  phase: Phase,
  now: number,
): Partial<Pick<ClusterRecord, "runningSince" | "sleptAt" | "frozenAt">> {
  // Whatever the change, what is frozen has been thawed by it (the runtime thaws before any operation).
  if (phase === "sleeping") return { sleptAt: now, frozenAt: null };
  if (phase === "starting") return { frozenAt: null };
  return phase === "running" ? { runningSince: now, sleptAt: null, frozenAt: null } : { sleptAt: null, frozenAt: null };
}

/**
 * Freeze when idle: a cluster of a user's that has had no connection through the gateway for
 * `freezeAfterMs` (the server's `--freeze-after`, default DEFAULT_FREEZE_AFTER_MS) has its
 * processes frozen in place, if nothing of the tenant's runs in it (the runtime looks: pods,
 * unfinished Jobs, CronJobs). It keeps its memory and phase `running`, uses no CPU, and the
 * next connection through the gateway thaws it in milliseconds. Sleep (above) still comes at
 * its `idleMinutes`, and frees the memory too.
 */
export const DEFAULT_FREEZE_AFTER_MS = 60_000;

/**
 * How many frozen clusters go to sleep to let one more cluster run on a full host: a frozen
 * cluster runs nothing of the tenant's, so a sleep loses it nothing but the time of its next
 * wake (seconds, against a thaw's fraction of one), and frees its memory.
 */
export function frozenToSleep(counts: { total: number; frozen?: number }, hostCapacity: number): number {
  const over = counts.total - hostCapacity + 1;
  return over > 0 ? Math.min(over, counts.frozen ?? 0) : 0;
}

/** Whether the controller should look at this cluster for a freeze at all. */
export function mayFreeze(r: ClusterRecord): boolean {
  // Pools' clusters answer a claim at once; the server's own serve others' traffic.
  return !r.pooled && !r.system && r.desired === "running" && r.phase === "running" && r.frozenAt === null;
}

/** Whether the cluster is to be frozen now (a freeze may still find the tenant's work running in it). */
export function isFreezable(
  r: ClusterRecord,
  activity: ConnectionActivity | undefined,
  now: number,
  freezeAfterMs: number,
): boolean {
  if (!activity || freezeAfterMs <= 0 || !mayFreeze(r)) return false;
  if ((activity.clusters[r.id]?.open ?? 0) > 0) return false;
  return now - lastActiveAt(r, activity) >= freezeAfterMs;
}

/** Whether this change ends a wake: a start out of sleep reaching running (the owner is not told). */
export function endsWake(next: ClusterRecord, previous: ClusterRecord): boolean {
  return previous.sleptAt !== null && previous.phase !== "running" && next.phase === "running";
}
