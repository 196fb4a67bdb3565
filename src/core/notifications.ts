import type { ClusterRecord, Phase } from "./cluster-record.js";
import { endsWake } from "./idle.js";

/**
 * Who is told what, when, and in which words: the whole notification policy, pure. The
 * store queues what these functions return in the same transaction as the change that
 * caused it (so nothing is lost to a crash between the two); the controller's notifier
 * delivers the queue.
 */
/** What happens to a cluster that its owner is told of. */
export type ClusterNotificationEvent = "ready" | "started" | "stopped" | "terminated" | "failed" | "expiry-warning";
/** What happens to an ephemeral service that is told (core/service-notifications.ts). */
export type ServiceNotificationEvent = "service-available" | "service-expired";
export type NotificationEvent = ClusterNotificationEvent | ServiceNotificationEvent;
export type NotificationChannel = "email" | "webhook";

/** Where notifications go besides the owner's email address, and when the expiry warning goes out. */
export interface NotificationPolicy {
  /** Every event is also POSTed here as JSON. */
  webhookUrl?: string;
  /** How long before expiry the warning goes out (DEFAULT_WARNING_MS when absent; 0: none). */
  warningMs?: number;
}

export const DEFAULT_WARNING_MS = 5 * 60_000;

/** One message to one recipient over one channel, as queued (the outbox row before it has an id). */
export interface OutgoingNotification {
  /** Unique per event, cluster and channel: a message queued twice is stored once. */
  dedupeKey: string;
  clusterId: string;
  event: NotificationEvent;
  channel: NotificationChannel;
  recipient: string;
  payload: Record<string, unknown>;
}

/** What a change of a cluster queues, given the record before and after it (the store calls it inside its transaction). */
export type ChangeNotifications = (next: ClusterRecord, previous: ClusterRecord) => OutgoingNotification[];

export interface Notification {
  event: ClusterNotificationEvent;
  dedupeKey: string;
  subject: string;
  text: string;
  payload: Record<string, unknown>;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The event a phase change means, if any ("running" after "provisioning" is "ready"). */
export function eventForTransition(before: Phase, after: Phase): ClusterNotificationEvent | undefined {
  if (after === before) return undefined;
  switch (after) {
    case "running":
      return before === "provisioning" ? "ready" : "started";
    case "stopped":
      return "stopped";
    case "terminated":
      return "terminated";
    case "failed":
      return "failed";
    // Sleep is the service saving resources, not the owner's doing or concern: nothing is sent
    // (nor for the wake: see onPhaseChange). Expiry, stop and delete of a sleeping cluster are told as usual.
    case "sleeping":
      return undefined;
    default:
      return undefined;
  }
}

export function notificationFor(event: ClusterNotificationEvent, r: ClusterRecord, now: number): Notification {
  const when = `at ${iso(now)}`;
  const lines: Record<ClusterNotificationEvent, [string, string]> = {
    ready: [
      `cluster ${r.id} is ready`,
      `Your Kubernetes ${r.spec.kubernetesVersion} cluster ${r.id} is ready ${when}. It expires at ${iso(r.expiresAt)} and will then be ${r.keep ? "stopped" : "terminated"}.`,
    ],
    started: [`cluster ${r.id} started`, `Cluster ${r.id} started ${when}. It expires at ${iso(r.expiresAt)}.`],
    stopped: [
      `cluster ${r.id} stopped`,
      `Cluster ${r.id} stopped ${when}. Its state is kept; start it again to use it.`,
    ],
    terminated: [`cluster ${r.id} terminated`, `Cluster ${r.id} was terminated ${when}; everything of it is gone.`],
    failed: [`cluster ${r.id} failed`, `Cluster ${r.id} failed ${when}: ${r.lastError ?? "unknown error"}`],
    "expiry-warning": [
      `cluster ${r.id} expires at ${iso(r.expiresAt)}`,
      `Cluster ${r.id} expires at ${iso(r.expiresAt)} and will then be ${r.keep ? "stopped" : "terminated"}. Extend it to keep using it.`,
    ],
  };
  const [subject, text] = lines[event];
  // A warning belongs to one expiry; other events to one change of what the owner wants.
  const dedupeKey =
    event === "expiry-warning" ? `${r.id}:${event}:${r.expiresAt}` : `${r.id}:${event}:g${r.generation}`;
  return {
    event,
    dedupeKey,
    subject,
    text,
    payload: {
      event,
      clusterId: r.id,
      name: r.name,
      phase: r.phase,
      expiresAt: iso(r.expiresAt),
      // The operator's webhook hears of the server's own cluster too (it has no owner to email); marked so.
      ...(r.system ? { system: r.system } : {}),
      at: iso(now),
      subject,
      text,
    },
  };
}

/** The messages one event produces: an email to the owner when they gave an address, a webhook call when one is set. */
export function notificationsFor(
  event: ClusterNotificationEvent,
  r: ClusterRecord,
  now: number,
  policy: NotificationPolicy,
): OutgoingNotification[] {
  // A warm-pool cluster has no owner to tell yet; its life for the user starts when claimed.
  if (r.pooled) return [];
  const n = notificationFor(event, r, now);
  const out: OutgoingNotification[] = [];
  if (r.notificationEmail) {
    out.push({
      dedupeKey: `${n.dedupeKey}:email`,
      clusterId: r.id,
      event,
      channel: "email",
      recipient: r.notificationEmail,
      payload: n.payload,
    });
  }
  if (policy.webhookUrl) {
    out.push({
      dedupeKey: `${n.dedupeKey}:webhook`,
      clusterId: r.id,
      event,
      channel: "webhook",
      recipient: policy.webhookUrl,
      payload: n.payload,
    });
  }
  return out;
}

/** A phase change tells the owner when it means an event (see eventForTransition); a wake from sleep tells nobody. */
export function onPhaseChange(now: number, policy: NotificationPolicy): ChangeNotifications {
  return (next, previous) => {
    if (endsWake(next, previous)) return [];
    const event = eventForTransition(previous.phase, next.phase);
    return event ? notificationsFor(event, next, now, policy) : [];
  };
}

/** The warning before expiry: queued once per expiry (its dedupe key holds `expiresAt`), whatever else changed. */
export function onExpiryWarning(now: number, policy: NotificationPolicy): ChangeNotifications {
  return (next) => notificationsFor("expiry-warning", next, now, policy);
}
