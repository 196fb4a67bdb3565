import { existsSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { systemClock, type Clock } from "../core/clock.js";
import { LifetimeController } from "../controller/lifetime-controller.js";
import { Notifier, type NotifierOptions } from "../controller/notifier.js";
import type { RuntimeDriver } from "../runtime/driver.js";
import { LocalRuntime } from "../runtime/local/local-runtime.js";
import { clusterReleases } from "../runtime/local/cluster-releases.js";
import type { ClusterEgress } from "../runtime/local/host-firewall.js";
import { Store } from "../store/store.js";
import { describeBound } from "../host/capacity.js";
import { ensureCompressedSwap } from "../host/compressed-swap.js";
import { estimateHostCapacity } from "../host/host-budgets.js";
import { dataDir as defaultDataDir } from "../util/paths.js";
import type { ClusterRecord } from "../core/cluster-record.js";
import { defaultPoolProfiles, type PoolProfile, type PoolShape } from "../core/pool-profiles.js";
import { TempkubeError } from "../util/errors.js";
import { DEFAULT_KUBERNETES_MINOR } from "../setup/catalogue.js";
import { DEFAULT_CLUSTER_DOMAIN, GatewayPaths, type GatewayConfig } from "../gateway/gateway-files.js";
import { ensureGateway } from "../gateway/gateway-process.js";
import { fetchGatewayActivity, fetchGatewayMetrics } from "../gateway/control-client.js";
import { GatewaySleepFiles } from "../gateway/sleep-markers.js";
import { defaultPublicAddress } from "../gateway/public-address.js";
import { buildApp } from "./app.js";
import { hostNames, loadGivenCertificate, selfSignedCertificate, withListenHost, type ApiTls } from "./api-tls.js";
import { ServiceMetrics } from "./metrics.js";
import { ClusterService } from "../service/cluster-service.js";
import { TokenService } from "../service/token-service.js";
import { EphemeralServices, type EphemeralServicesOptions } from "../service/ephemeral-services.js";
import type { ServicesConfig } from "../services/presets.js";
import { ServiceAuth } from "../services/service-auth.js";
import { KubeEphemeronApi, onFirstUse } from "../services/ephemeron-api.js";
import { EphemeronHub } from "../services/ephemeron-hub.js";
import type { GatewayLink } from "../controller/gateway-link.js";
import { ServicesCluster } from "../service/services-cluster.js";
import { notifyServiceEvent, type ServiceEvent } from "../service/service-events.js";
import { defaultServicesDomain } from "../services/ephemeron-types.js";
import { servicesClusterOption, servicesDomainProblem } from "./services-cluster-options.js";
import { permittedDomains } from "../gateway/gateway-ca.js";
import { logger } from "../util/log.js";

export interface ServerOptions {
  host: string;
  port: number;
  dataDir?: string;
  driver?: RuntimeDriver;
  clock?: Clock;
  notifications?: NotifierOptions;
  /** Users' clusters running at once on this host; by default what its memory, idle CPU and kernel limits allow. */
  hostCapacity?: number;
  /**
   * Clusters kept booted for creates to claim: a number of the default shape, or profiles
   * (core/pool-profiles.ts parseWarmPool). They count against the host's capacity.
   */
  warmPool?: number | PoolProfile[];
  /** A postgres:// URL (or a SQLite file); by default SQLite at <dataDir>/tempkube.db. */
  database?: string;
  /** What clusters may reach outside the host (local runtime; ignored with `driver`). */
  clusterEgress?: ClusterEgress;
  /** `idleMinutes` of a create that names none (`--idle-minutes`); 0 or absent: clusters never sleep unless asked. */
  idleMinutes?: number;
  /**
   * Idle time after which a user's running cluster is frozen (core/idle.ts); 0 or absent: never.
   * `tempkube server --freeze-after` defaults to DEFAULT_FREEZE_AFTER_MS.
   */
  freezeAfterMs?: number;
  /**
   * Whether frozen clusters' memory goes to compressed swap in memory, set up by the server
   * when the host has no swap (host/compressed-swap.ts); default true. Local runtime only.
   */
  compressFrozen?: boolean;
  /** The gateway's activity, sleeping markers and wake requests (src/gateway/sleep-markers.ts); without it nothing sleeps. */
  gatewayLink?: GatewayLink;
  /**
   * The gateway in front of every cluster (its own supervised process, left running when the
   * server stops, so connections through it survive a restart): kubeconfigs lead through it.
   * publicAddress: by default the --listen host's (src/gateway/public-address.ts).
   */
  gateway?: Omit<GatewayConfig, "publicAddress"> & { publicAddress?: string };
  /** HTTPS with the operator's certificate, or a self-signed one kept in <dataDir>/api-tls; plain HTTP without. */
  tls?: { certFile: string; keyFile: string } | "self-signed";
  /**
   * Ephemeral services (issue 14): the services cluster's objects (made on first use by
   * `getApi`), the presets and apps of `--services-config`. Absent: no /v1/services, no /ephemeron.
   * The /ephemeron/auth signing secret is <dataDir>/services-jwt-secret (made on first start).
   */
  services?: Omit<EphemeralServicesOptions, "clock" | "config" | "getApi"> & {
    config: ServicesConfig;
    /** By default the Ephemerons of the services cluster (`servicesCluster`), made at the first request that needs them. */
    getApi?: EphemeralServicesOptions["getApi"];
  };
  /**
   * The shape of the cluster the server keeps for ephemeral services (`--services-cluster`), made
   * on first use (ServicesCluster.ensure); false: none. Absent: the default size and version.
   */
  servicesCluster?: PoolShape | false;
  /** Where services in the services cluster are served: `<name>.<servicesDomain>` (default services.<cluster domain>). */
  servicesDomain?: string;
}

export interface RunningServer {
  /** The gateway's configuration, when the server runs one. */
  gateway?: GatewayConfig;
  url: string;
  app: FastifyInstance;
  adminTokenFile: string;
  store: Store;
  hostCapacity: number;
  /** What bounds the capacity when the host's own figures set it ("18 clusters, bound by CPU at idle (...)"). */
  capacityBound?: string;
  /** The certificate served over HTTPS (absent on plain HTTP): the file clients trust, its fingerprint. */
  tls?: ApiTls;
  /** The cluster ephemeral services run in (made on first `ensure()`); absent with `servicesCluster: false`. */
  servicesCluster?: ServicesCluster;
  /** `<name>.<servicesDomain>`: where the services cluster's Ephemerons are served. */
  servicesDomain: string;
  /** The /metrics registry's counters (services' counts among them: ServiceMetrics.services*). */
  metrics: ServiceMetrics;
  /** What an Ephemeron controller's event (available, expired) does: notifications and counts (service-events.ts). */
  onServiceEvent(event: ServiceEvent): Promise<void>;
  /** One Ephemeron controller per running cluster (the services cluster's and tenants'), with the gateway only. */
  ephemeronHub?: EphemeronHub;
  close(): Promise<void>;
}

/**
 * Opens the store (PostgreSQL, or SQLite in the data directory), writes an admin token on first start,
 * starts the lifetime controller (which adopts whatever the store says exists) and listens.
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const pools = warmPoolProfiles(options.warmPool);
  const servicesShape =
    options.servicesCluster === false ? undefined : (options.servicesCluster ?? servicesClusterOption(undefined));
  // The local runtime boots what is installed; a pool of another version would fail at every boot.
  // The services cluster when asked for by name; the default one is checked at its first use (a 409 naming the command).
  if (!options.driver) refuseUninstalled(pools, options.servicesCluster ? servicesShape : undefined);
  const clusterDomain = options.gateway?.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN;
  const servicesDomain = options.servicesDomain ?? defaultServicesDomain(clusterDomain);
  const domainProblem = servicesDomainProblem(servicesDomain, clusterDomain);
  if (domainProblem) throw new TempkubeError("invalid-input", domainProblem);
  const dir = options.dataDir ?? defaultDataDir();
  await mkdir(dir, { recursive: true });
  // Before anything else: a wrong --tls-cert/--tls-key should fail without side effects.
  const tls =
    options.tls === "self-signed"
      ? await selfSignedCertificate(dir, withListenHost(hostNames(), options.host))
      : options.tls && (await loadGivenCertificate(options.tls.certFile, options.tls.keyFile));
  const clock = options.clock ?? systemClock;
  // Uploads cut short by a crash are of no use to anyone.
  await rm(join(dir, "uploads"), { recursive: true, force: true });
  const store = await Store.open(options.database ?? join(dir, "tempkube.db"));
  const adminTokenFile = join(dir, "admin-token");
  if (!existsSync(adminTokenFile)) {
    const { token } = await store.tokens.create("admin", true, clock.now());
    await writeFile(adminTokenFile, `${token}\n`, { mode: 0o600 });
  }
  // The data dir holds the clusters as well as the store: one directory, whichever way it is named.
  const freezing = (options.freezeAfterMs ?? 0) > 0;
  // Set up before the capacity is counted: a compressed frozen cluster takes a quarter of the memory.
  const compressFrozen =
    freezing && !options.driver && (options.compressFrozen ?? true) && (await ensureCompressedSwap()).state === "on";
  const driver =
    options.driver ??
    new LocalRuntime({
      dataDir: dir,
      clusterEgress: options.clusterEgress,
      clusterDomain: options.gateway?.clusterDomain,
      compressFrozen,
    });
  const gateway = options.gateway && (await startGateway(dir, options.host, options.gateway, servicesDomain, driver));
  const gatewayPaths = new GatewayPaths(dir);
  const notificationOptions = options.notifications ?? {};
  const notifier = new Notifier(store, clock, notificationOptions);
  const estimate =
    options.hostCapacity === undefined
      ? await estimateHostCapacity({ idleClustersFrozen: freezing, frozenCompressed: compressFrozen })
      : undefined;
  const hostCapacity = options.hostCapacity ?? estimate!.capacity;
  const controller = new LifetimeController(
    store,
    driver,
    clock,
    { notifier, options: notificationOptions },
    { profiles: pools, hostCapacity },
    options.gatewayLink ??
      (gateway ? new GatewaySleepFiles(gatewayPaths, () => fetchGatewayActivity(gatewayPaths)) : undefined),
    options.freezeAfterMs ?? 0,
  );
  const metrics = new ServiceMetrics(store, pools);
  // Users' creates: the services cluster's boot is no one's wait for a cluster.
  controller.on("ready", (r: ClusterRecord) => {
    if (!r.system) metrics.createSeconds.observe((clock.now() - r.createdAt) / 1000);
  });
  controller.on("expired", (r: ClusterRecord) => metrics.expiries.inc({ outcome: r.desired }));
  controller.on("slept", () => metrics.sleeps.inc());
  controller.on("froze", () => metrics.freezes.inc());
  controller.on("thawed", () => metrics.thaws.inc());
  controller.on("woke", (r: ClusterRecord) =>
    metrics.wakes.inc({ result: r.phase === "running" ? "running" : "failed" }),
  );
  notifier.onAttempt = (ok) => metrics.deliveries.inc({ result: ok ? "delivered" : "failed" });
  const clusters = new ClusterService(
    store,
    controller,
    driver,
    clock,
    {
      hostCapacity,
      notifications: notificationOptions,
      defaultIdleMinutes: options.idleMinutes,
    },
    {
      gateway: gateway && {
        publicAddress: gateway.publicAddress,
        port: gateway.listen.port,
        clusterDomain: gateway.clusterDomain,
      },
      warmPool: {
        profiles: pools,
        onCreate: (profile, hit) => (hit ? metrics.poolHits : metrics.poolMisses).inc({ profile }),
      },
    },
  );
  const servicesCluster =
    servicesShape && new ServicesCluster(store, clusters, controller, driver, clock, servicesShape);
  const services =
    options.services &&
    new EphemeralServices({
      ...options.services,
      getApi: options.services.getApi ?? servicesApi(servicesCluster),
      // URLs lead through this server's gateway unless told otherwise.
      gateway:
        options.services.gateway ?? (gateway && { httpPort: gateway.httpListen.port, httpsPort: gateway.listen.port }),
      clock,
      onChange: (what) => (what === "created" ? metrics.servicesCreated : metrics.servicesDeleted).inc(),
    });
  const serviceAuth = options.services && (await ServiceAuth.open(dir, options.services.config.apps, clock));
  const app = await buildApp({
    services,
    serviceAuth,
    clusters,
    tokens: new TokenService(store, clock),
    metrics,
    uploadsDir: join(dir, "uploads"),
    // The gateway's own counters (connections, bytes, refusals) beside the service's, on one /metrics.
    extraMetrics: gateway ? async () => (await fetchGatewayMetrics(gatewayPaths)) ?? "" : undefined,
    https: tls && { cert: tls.certPem, key: tls.keyPem },
  });
  // The address first: a second server started by mistake must fail before its controller
  // acts on the store (it would retire the first one's warm pool, for a start).
  let address: string;
  try {
    address = await app.listen({ host: options.host, port: options.port });
  } catch (err) {
    await app.close();
    await store.close();
    if ((err as NodeJS.ErrnoException).code === "EADDRINUSE") {
      throw new TempkubeError(
        "invalid-input",
        `${options.host}:${options.port} is already in use (another tempkube server?); choose another with --listen`,
      );
    }
    throw err;
  }
  const onServiceEvent = (event: ServiceEvent) =>
    notifyServiceEvent(
      {
        store,
        policy: notificationOptions,
        notifier,
        metrics,
        clock,
        servicesClusterId: () => servicesCluster?.clusterId(),
      },
      event,
    );
  // Ephemerons are served through the gateway (their routes, the Available check): without it, no controllers.
  const ephemeronHub =
    gateway &&
    new EphemeronHub({
      dataDir: dir,
      gatewayHttp: gateway.httpListen,
      clusterDomain: gateway.clusterDomain,
      servicesDomain,
      servicesClusterId: () => servicesCluster?.clusterId(),
      clock,
      log: logger,
    });
  // tempkube_services{cluster}: what the controllers' caches hold at each scrape.
  if (ephemeronHub) metrics.servicesNow = () => ephemeronHub.counts();
  ephemeronHub?.onEvent((event) => {
    onServiceEvent(event).catch((err: unknown) =>
      logger.warn({ err: String(err), service: event.name }, "could not queue a service's notifications"),
    );
  });
  notifier.start();
  controller.start();
  // Not fatal: the cluster is made or started again at its next use.
  await servicesCluster
    ?.start()
    .catch((err: unknown) => logger.warn({ err: String(err) }, "could not re-adopt the services cluster"));
  // After the services cluster's id is known: its controller serves <name>.<services domain>.
  await ephemeronHub
    ?.start()
    .catch((err: unknown) => logger.warn({ err: String(err) }, "ephemeron controllers: first scan failed; retried"));
  return {
    url: address,
    app,
    adminTokenFile,
    store,
    hostCapacity,
    capacityBound: estimate && describeBound(estimate.boundBy),
    tls,
    gateway,
    servicesCluster,
    servicesDomain,
    metrics,
    onServiceEvent,
    ephemeronHub,
    async close() {
      servicesCluster?.stop();
      await app.close();
      await ephemeronHub?.stop();
      await controller.stop();
      await notifier.stop();
      await store.close();
    },
  };
}

/**
 * The services cluster's Ephemerons, for the services API: the cluster made (or started again)
 * and its client built at the first request that needs them, shared by the requests meanwhile
 * (onFirstUse; a failure is not kept). Without a services cluster every such request is a 503.
 */
function servicesApi(cluster: ServicesCluster | undefined): EphemeralServicesOptions["getApi"] {
  if (!cluster)
    return () =>
      Promise.reject(
        new TempkubeError("setup", "this server keeps no services cluster (--services-cluster none): no services here"),
      );
  return onFirstUse(async () => KubeEphemeronApi.fromKubeconfig((await cluster.ensure()).adminKubeconfig));
}

function warmPoolProfiles(warmPool: ServerOptions["warmPool"]): PoolProfile[] {
  if (typeof warmPool !== "number") return warmPool ?? [];
  if (!Number.isInteger(warmPool) || warmPool < 0)
    throw new TempkubeError("invalid-input", `warmPool must be a whole number >= 0, not ${warmPool}`);
  return defaultPoolProfiles(warmPool, DEFAULT_KUBERNETES_MINOR);
}

/** A pool (or the services cluster) of a version that is offered but not installed is refused with the command that installs it. */
function refuseUninstalled(pools: readonly PoolProfile[], services: PoolShape | undefined): void {
  const poolVersions = new Set(pools.filter((p) => p.count > 0).map((p) => p.shape.kubernetesVersion));
  if (services && !poolVersions.has(services.kubernetesVersion)) {
    try {
      clusterReleases(services.kubernetesVersion);
    } catch (err) {
      if (!(err instanceof TempkubeError)) throw err;
      throw new TempkubeError(
        "setup",
        `services cluster: ${err.message} (or give --services-cluster another version, or none)`,
      );
    }
  }
  const versions = [...poolVersions];
  const problems: string[] = [];
  for (const version of versions) {
    try {
      // The same check as a create's: the control plane's release and the nodes' kubelet.
      clusterReleases(version);
    } catch (err) {
      if (!(err instanceof TempkubeError)) throw err;
      problems.push(err.message);
    }
  }
  if (problems.length)
    throw new TempkubeError(
      "setup",
      `warm pool: ${problems.join("; ")} (or leave ${problems.length > 1 ? "those profiles" : "that profile"} out of --warm-pool)`,
    );
}

/**
 * Starts (or keeps) the gateway with this configuration, after making sure every cluster of
 * the data dir has its route (clusters made before the gateway existed).
 */
async function startGateway(
  dir: string,
  listenHost: string,
  options: NonNullable<ServerOptions["gateway"]>,
  servicesDomain: string,
  driver: RuntimeDriver,
): Promise<GatewayConfig> {
  const config: GatewayConfig = {
    listen: options.listen,
    httpListen: options.httpListen,
    clusterDomain: options.clusterDomain,
    // Its CA vouches for clusters' and services' names only (gateway-ca.ts: name constraints).
    certificateDomains: permittedDomains([options.clusterDomain, servicesDomain]),
    publicAddress: options.publicAddress ?? (await defaultPublicAddress(listenHost)),
  };
  if (driver instanceof LocalRuntime) {
    await driver.adoptRoutes();
    await driver.releaseOrphanedTaskState();
  }
  await ensureGateway(dir, config);
  return config;
}
