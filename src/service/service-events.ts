import { systemClock, type Clock } from "../core/clock.js";
import type { NotificationPolicy } from "../core/notifications.js";
import { serviceNotificationsFor, type ServiceEvent } from "../core/service-notifications.js";
import type { Notifier } from "../controller/notifier.js";
import type { ServiceMetrics } from "../server/metrics.js";
import type { Store } from "../store/store.js";

export type { ServiceEvent } from "../core/service-notifications.js";

export interface ServiceEventSinks {
  store: Store;
  /** The server's webhook (`--webhook-url`). */
  policy: NotificationPolicy;
  /** Delivers the outbox; told to look at it at once. */
  notifier?: Notifier;
  metrics?: ServiceMetrics;
  /** The services cluster's id when it has one (ServicesCluster): only its services may be emailed about. */
  servicesClusterId: () => string | undefined;
  /** The notifier's clock: queued messages are due from its now (default: the system's). */
  clock?: Clock;
}

/**
 * What the Ephemeron controllers' events (available, expired) do on the server: queued in the
 * outbox for the webhook and, for a service of the services cluster created with one, an email
 * (core/service-notifications.ts), then delivered by the notifier like a cluster's; counted in
 * /metrics. A message queued before (same object and event) is not queued again.
 */
export async function notifyServiceEvent(sinks: ServiceEventSinks, e: ServiceEvent): Promise<void> {
  const servicesId = sinks.servicesClusterId();
  const cluster = e.clusterId === servicesId ? "services" : "tenant";
  (e.type === "available" ? sinks.metrics?.servicesAvailable : sinks.metrics?.servicesExpired)?.inc({ cluster });
  await sinks.store.outbox.queue(
    serviceNotificationsFor(e, sinks.policy, servicesId),
    (sinks.clock ?? systemClock).now(),
  );
  sinks.notifier?.trigger();
}
