import type { NotificationPolicy, OutgoingNotification, ServiceNotificationEvent } from "./notifications.js";

/**
 * Who is told what of an ephemeral service (issue 14, deliverable 4), pure, as
 * core/notifications.ts is for clusters: the server's webhook hears of every service becoming
 * available and expiring, in the services cluster and in tenants' clusters alike; an email goes
 * to the address a service was created with, and only for services in the services cluster.
 * There, only the server writes Ephemerons (through the services API, which took the address
 * from an authenticated caller, as a cluster create does); in a tenant's cluster anyone with
 * its kubeconfig could write any address into an annotation and have the server mail strangers.
 */

/**
 * The annotation the services API puts on an Ephemeron it creates with a notification email
 * (in the services cluster); the Ephemeron controller passes it on with its events.
 */
export const NOTIFICATION_EMAIL_ANNOTATION = "tempkube.dev/notification-email";

/**
 * One event of the Ephemeron controller: the shape its hub emits (services/ephemeron-controller.ts
 * EphemeronEvent: type, clusterId, name, host, createdBy, at), and what makes the messages exact
 * when the controller gives it.
 */
export interface ServiceEvent {
  type: "available" | "expired";
  /** The cluster the Ephemeron is in: the services cluster's id, or a tenant's cluster's. */
  clusterId: string;
  name: string;
  /** `<name>.<services domain>` or `<name>.<cluster id>.<cluster domain>`. */
  host: string;
  /** The created-by annotation (`uid.app`, `token:<id>`), when set. */
  createdBy?: string;
  /** Epoch ms of the event. */
  at: number;
  /** metadata.uid: one message per object even when a name is used again (else `at` tells events apart). */
  uid?: string;
  /** spec.expirationTime (RFC 3339). */
  expirationTime?: string;
  /** The NOTIFICATION_EMAIL_ANNOTATION of the object; heeded only in the services cluster. */
  notificationEmail?: string;
  /** The URL it serves at (https when it has TLS); http://<host> when absent. */
  url?: string;
}

/** A mailbox and nothing else: no display name, list, header or white space (it becomes an SMTP recipient). */
const MAILBOX = /^[^\s@,;:<>()[\]"\\]+@[^\s@,;:<>()[\]"\\]+\.[^\s@,;:<>()[\]"\\]+$/;
/** The longest address SMTP carries (RFC 5321 4.5.3.1: a 256-octet path, less its angle brackets). */
const MAX_MAILBOX = 254;

/**
 * Why `email` cannot be a service's notification address (`field` names it in the message), or
 * undefined when it can. The services API refuses what this refuses, so an address that was
 * accepted is one serviceNotificationsFor mails (not one dropped in silence at the first event).
 */
export function notificationEmailProblem(email: string, field: string): string | undefined {
  if (email.length > MAX_MAILBOX) return `${field} is longer than ${MAX_MAILBOX} characters`;
  if (!MAILBOX.test(email))
    return `${field} must be one plain address (name@domain.tld: no display name, list, space or quotes)`;
  return undefined;
}

const EVENT: Record<ServiceEvent["type"], ServiceNotificationEvent> = {
  available: "service-available",
  expired: "service-expired",
};

/** The messages one service event produces. `servicesClusterId`: the services cluster's id, if it has one yet. */
export function serviceNotificationsFor(
  e: ServiceEvent,
  policy: NotificationPolicy,
  servicesClusterId: string | undefined,
): OutgoingNotification[] {
  const event = EVENT[e.type];
  const url = e.url ?? `http://${e.host}`;
  const at = new Date(e.at).toISOString();
  const expires = e.expirationTime ? ` It expires at ${e.expirationTime}.` : "";
  const [subject, text] =
    e.type === "available"
      ? [`service ${e.name} is available at ${url}`, `Your service ${e.name} serves at ${url} since ${at}.${expires}`]
      : [
          `service ${e.name} expired`,
          `Service ${e.name} (${e.host}) expired at ${at}; it was deleted with its pod, service and route.`,
        ];
  const payload = {
    event,
    clusterId: e.clusterId,
    service: e.name,
    host: e.host,
    url,
    ...(e.uid ? { uid: e.uid } : {}),
    ...(e.expirationTime ? { expirationTime: e.expirationTime } : {}),
    createdBy: e.createdBy ?? null,
    at,
    subject,
    text,
  };
  // One message per object and event, whatever redelivers it (a controller restarted mid-way).
  const key = `service:${e.clusterId}/${e.name}:${e.uid ?? e.at}:${event}`;
  const out: OutgoingNotification[] = [];
  const email = e.notificationEmail?.trim();
  if (email && e.clusterId === servicesClusterId && !notificationEmailProblem(email, "")) {
    out.push({ dedupeKey: `${key}:email`, clusterId: e.clusterId, event, channel: "email", recipient: email, payload });
  }
  if (policy.webhookUrl) {
    out.push({
      dedupeKey: `${key}:webhook`,
      clusterId: e.clusterId,
      event,
      channel: "webhook",
      recipient: policy.webhookUrl,
      payload,
    });
  }
  return out;
}
