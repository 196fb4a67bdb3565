import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Store } from "../store/store.js";

/** One registry, one prefix. Cluster counts are read from the store at scrape time. */
export class ServiceMetrics {
  readonly registry = new Registry();
  readonly createSeconds = new Histogram({
    name: "tempkube_cluster_create_seconds",
    help: "Time from create request to ready cluster",
    buckets: [1, 2, 3, 5, 8, 13, 21, 34, 60, 120],
    registers: [this.registry],
  });
  readonly expiries = new Counter({
    name: "tempkube_cluster_expiries_total",
    help: "Clusters acted on at expiry",
    labelNames: ["outcome"],
    registers: [this.registry],
  });
  readonly sleeps = new Counter({
    name: "tempkube_cluster_sleeps_total",
    help: "Clusters put to sleep after their idle time without a connection",
    registers: [this.registry],
  });
  readonly wakes = new Counter({
    name: "tempkube_cluster_wakes_total",
    help: "Clusters woken from sleep (by a connection or a start), by outcome",
    labelNames: ["result"],
    registers: [this.registry],
  });
  readonly deliveries = new Counter({
    name: "tempkube_notification_deliveries_total",
    help: "Notification delivery attempts",
    labelNames: ["result"],
    registers: [this.registry],
  });

  constructor(store: Store) {
    new Gauge({
      name: "tempkube_clusters",
      help: "Clusters by phase",
      labelNames: ["phase"],
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const r of await store.clusters.list()) this.inc({ phase: r.phase });
      },
    });
    new Gauge({
      name: "tempkube_warm_pool_clusters",
      help: "Warm-pool clusters by phase (not yet claimed)",
      labelNames: ["phase"],
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const r of await store.clusters.all())
          if (r.pooled && r.phase !== "terminated") this.inc({ phase: r.phase });
      },
    });
  }
}
