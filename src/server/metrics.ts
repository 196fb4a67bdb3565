import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { compressedSwap } from "../host/compressed-swap.js";
import type { Store } from "../store/store.js";
import { profileLabel, type PoolProfile } from "../core/pool-profiles.js";

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
  readonly freezes = new Counter({
    name: "tempkube_cluster_freezes_total",
    help: "Clusters frozen after --freeze-after without a connection (nothing of the tenant's running in them)",
    registers: [this.registry],
  });
  readonly thaws = new Counter({
    name: "tempkube_cluster_thaws_total",
    help: "Frozen clusters thawed by a connection through the gateway",
    registers: [this.registry],
  });
  readonly deliveries = new Counter({
    name: "tempkube_notification_deliveries_total",
    help: "Notification delivery attempts",
    labelNames: ["result"],
    registers: [this.registry],
  });

  /** Creates served from their profile's pool; profile "none" never appears here. */
  readonly poolHits = new Counter({
    name: "tempkube_warm_pool_hits_total",
    help: "Creates served at once from the warm pool of their shape, by profile",
    labelNames: ["profile"],
    registers: [this.registry],
  });
  /** Creates booted cold: their profile's pool had none ready, or (profile "none") no pool holds their shape. */
  readonly poolMisses = new Counter({
    name: "tempkube_warm_pool_misses_total",
    help: 'Creates booted cold: their profile\'s pool had no cluster ready (profile "none": no pool holds that shape)',
    labelNames: ["profile"],
    registers: [this.registry],
  });

  /** Ephemeral services created through the services API (issue 14). */
  readonly servicesCreated = new Counter({
    name: "tempkube_services_created_total",
    help: "Ephemeral services created through the services API",
    registers: [this.registry],
  });
  /** Deleted through the API before their expiry. */
  readonly servicesDeleted = new Counter({
    name: "tempkube_services_deleted_total",
    help: "Ephemeral services deleted through the services API before their expiry",
    registers: [this.registry],
  });
  /** cluster: "services" (the server's services cluster) or "tenant" (an Ephemeron in a tenant's cluster). */
  readonly servicesAvailable = new Counter({
    name: "tempkube_services_available_total",
    help: "Ephemeral services that became available (a request through the gateway answered 200), by where they run",
    labelNames: ["cluster"],
    registers: [this.registry],
  });
  readonly servicesExpired = new Counter({
    name: "tempkube_services_expired_total",
    help: "Ephemeral services deleted at their expirationTime, by where they ran",
    labelNames: ["cluster"],
    registers: [this.registry],
  });
  /**
   * Ephemerons that exist now, as the services' controllers see them (their informers' caches:
   * nothing is asked of any cluster at a scrape); set by whoever runs the controllers. Unset: no series.
   */
  servicesNow: (() => { services: number; tenant: number } | Promise<{ services: number; tenant: number }>) | undefined;

  constructor(store: Store, pools: readonly PoolProfile[] = []) {
    for (const cluster of ["services", "tenant"]) {
      this.servicesAvailable.inc({ cluster }, 0);
      this.servicesExpired.inc({ cluster }, 0);
    }
    const metrics = this;
    new Gauge({
      name: "tempkube_services",
      help: "Ephemeral services (Ephemerons) that exist now, by where they run",
      labelNames: ["cluster"],
      registers: [this.registry],
      async collect() {
        this.reset();
        const now = await metrics.servicesNow?.();
        if (now) for (const [cluster, n] of Object.entries(now)) this.set({ cluster }, n);
      },
    });
    // Every profile shows from the first scrape, at 0: a rate over a series that appears late misses its start.
    for (const p of pools) {
      this.poolHits.inc({ profile: p.label }, 0);
      this.poolMisses.inc({ profile: p.label }, 0);
    }
    this.poolMisses.inc({ profile: "none" }, 0);
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
      name: "tempkube_clusters_frozen",
      help: "Running clusters frozen now (idle: no CPU, memory kept; a connection thaws them)",
      registers: [this.registry],
      async collect() {
        this.set((await store.clusters.all()).filter((r) => r.phase === "running" && r.frozenAt !== null).length);
      },
    });
    new Gauge({
      name: "tempkube_compressed_swap_bytes",
      help: "Compressed swap in memory (zram) holding frozen clusters' pages: stored (uncompressed) and the RAM it takes",
      labelNames: ["kind"],
      registers: [this.registry],
      async collect() {
        const swap = await compressedSwap();
        this.set({ kind: "stored" }, swap.state === "on" ? swap.storedBytes : 0);
        this.set({ kind: "ram" }, swap.state === "on" ? swap.memoryUsedBytes : 0);
      },
    });
    new Gauge({
      name: "tempkube_warm_pool_clusters",
      help: "Warm-pool clusters (not yet claimed) by profile and phase; phase running: ready to be claimed",
      labelNames: ["profile", "phase"],
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const r of await store.clusters.all())
          if (r.pooled && r.phase !== "terminated") this.inc({ profile: profileLabel(r.spec), phase: r.phase });
      },
    });
    const wanted = new Gauge({
      name: "tempkube_warm_pool_wanted",
      help: "Warm-pool clusters each profile keeps (--warm-pool), while the host has room",
      labelNames: ["profile"],
      registers: [this.registry],
    });
    for (const p of pools) wanted.set({ profile: p.label }, p.count);
  }
}
