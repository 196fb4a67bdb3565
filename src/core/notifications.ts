import type { ClusterRecord, Phase } from "./cluster-record.js";

/** What owners are told about, and the words they are told in. Pure; the outbox sends it. */
export type NotificationEvent = "ready" | "started" | "stopped" | "terminated" | "failed" | "expiry-warning";

export interface Notification {
  event: NotificationEvent;
  dedupeKey: string;
  subject: string;
  text: string;
  payload: Record<string, unknown>;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The event a phase change means, if any ("running" after "provisioning" is "ready"). */
export function eventForTransition(before: Phase, after: Phase): NotificationEvent | undefined {
  if (after === before) return undefined;
  switch (after) {
    case "running": return before === "provisioning" ? "ready" : "started";
    case "stopped": return "stopped";
    case "terminated": return "terminated";
    case "failed": return "failed";
    default: return undefined;
  }
}

export function notificationFor(event: NotificationEvent, r: ClusterRecord, now: number): Notification {
  const when = `at ${iso(now)}`;
  const lines: Record<NotificationEvent, [string, string]> = {
    ready: [`cluster ${r.id} is ready`, `Your Kubernetes ${r.spec.kubernetesVersion} cluster ${r.id} is ready ${when}. It expires at ${iso(r.expiresAt)} and will then be ${r.keep ? "stopped" : "terminated"}.`],
    started: [`cluster ${r.id} started`, `Cluster ${r.id} started ${when}. It expires at ${iso(r.expiresAt)}.`],
    stopped: [`cluster ${r.id} stopped`, `Cluster ${r.id} stopped ${when}. Its state is kept; start it again to use it.`],
    terminated: [`cluster ${r.id} terminated`, `Cluster ${r.id} was terminated ${when}; everything of it is gone.`],
    failed: [`cluster ${r.id} failed`, `Cluster ${r.id} failed ${when}: ${r.lastError ?? "unknown error"}`],
    "expiry-warning": [`cluster ${r.id} expires at ${iso(r.expiresAt)}`, `Cluster ${r.id} expires at ${iso(r.expiresAt)} and will then be ${r.keep ? "stopped" : "terminated"}. Extend it to keep using it.`],
  };
  const [subject, text] = lines[event];
  // A warning belongs to one expiry; other events to one change of what the owner wants.
  const dedupeKey = event === "expiry-warning" ? `${r.id}:${event}:${r.expiresAt}` : `${r.id}:${event}:g${r.generation}`;
  return {
    event, dedupeKey, subject, text,
    payload: { event, clusterId: r.id, name: r.name, phase: r.phase, expiresAt: iso(r.expiresAt), at: iso(now), subject, text },
  };
}
