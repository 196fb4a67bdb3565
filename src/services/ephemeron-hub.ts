import { access, readdir, readFile } from "node:fs/promises";
import type { Clock } from "../core/clock.js";
import { GatewayPaths, type ClusterRoute } from "../gateway/gateway-files.js";
import { CLUSTER_ID } from "../gateway/route-reader.js";
import {
  EphemeronController,
  type ControllerLog,
  type EphemeronControllerOptions,
  type EphemeronEvent,
} from "./ephemeron-controller.js";
import { ephemeronHttpRoutes, removeHttpRoute, routeOwner } from "./ephemeron-route.js";
import { ephemeronHost } from "./ephemeron-types.js";

export interface EphemeronHubOptions {
  dataDir: string;
  gatewayHttp: { host: string; port: number };
  clusterDomain: string;
  servicesDomain: string;
  /** The id of the server-owned services cluster (its Ephemerons are `<name>.<servicesDomain>`), if there is one yet. */
  servicesClusterId: () => string | undefined;
  clock: Clock;
  log: ControllerLog;
  /** How often the cluster routes are read again (default 2 s). */
  rescanMs?: number;
  /** For tests: what a controller is (an EphemeronController by default). */
  makeController?: (options: EphemeronControllerOptions) => ClusterController;
}

export interface ClusterController {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Ephemerons in its cluster now, from its cache (EphemeronController.count); none when absent. */
  count?(): number;
}

type Running = { key: string; controller: ClusterController; started: Promise<void> };

/**
 * One EphemeronController per running cluster of the data dir, found from the gateway's
 * cluster routes (`gateway/routes/<id>.json`, written by the runtime at every start and
 * stop): a controller starts when a route says running and stops when it says anything
 * else or goes, so a stopped or sleeping cluster has none; when the cluster comes back its
 * controller's first list deletes what expired meanwhile. The routes are re-read every
 * `rescanMs` (a handful of small files) rather than watched: fs.watch misses renames on some
 * filesystems, and a 2 s lag only delays the start of a controller, never an expiry.
 */
export class EphemeronHub {
  private readonly paths: GatewayPaths;
  private readonly running = new Map<string, Running>();
  private readonly listeners: ((event: EphemeronEvent) => void)[] = [];
  private timer: unknown;
  private stopped = true;
  private scanning?: Promise<void>;

  constructor(private readonly o: EphemeronHubOptions) {
    this.paths = new GatewayPaths(o.dataDir);
  }

  /** Events of every controller, with their cluster id ("available", "expired"). */
  onEvent(listener: (event: EphemeronEvent) => void): void {
    this.listeners.push(listener);
  }

  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    await this.scanNow();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) this.o.clock.clearTimer(this.timer);
    this.timer = undefined;
    await this.scanning?.catch(() => undefined);
    await Promise.all([...this.running.keys()].map((id) => this.stopController(id)));
  }

  /** Cluster ids that have a controller now. */
  clusters(): string[] {
    return [...this.running.keys()].sort();
  }

  /**
   * Ephemerons that exist now in the clusters that have a controller (a stopped or sleeping
   * cluster's are not seen until it runs again), by where: the services cluster's and tenants'.
   * From the controllers' caches, so cheap enough for every /metrics scrape (tempkube_services).
   */
  counts(): { services: number; tenant: number } {
    const servicesId = this.o.servicesClusterId();
    const counts = { services: 0, tenant: 0 };
    for (const [id, r] of this.running)
      counts[id === servicesId ? "services" : "tenant"] += r.controller.count?.() ?? 0;
    return counts;
  }

  /** Reads the routes now (the server may call this right after a cluster started, not to wait for the next scan). */
  scanNow(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.scanning ??= this.scan().finally(() => {
      this.scanning = undefined;
      if (!this.stopped) {
        if (this.timer !== undefined) this.o.clock.clearTimer(this.timer);
        this.timer = this.o.clock.setTimer(() => void this.scanNow(), this.o.rescanMs ?? 2_000);
      }
    });
    return this.scanning;
  }

  private async scan(): Promise<void> {
    const routes = await this.readRoutes();
    const servicesId = this.o.servicesClusterId();
    for (const id of [...this.running.keys()]) {
      const route = routes.get(id);
      if (!route || route.phase !== "running" || this.keyOf(route, servicesId) !== this.running.get(id)?.key)
        await this.stopController(id);
    }
    for (const [id, route] of routes) {
      if (this.stopped) return;
      if (route.phase === "running" && !this.running.has(id)) this.startController(route, servicesId);
    }
    // A destroyed cluster has no route file and no controller to clean up after it: its
    // Ephemerons' routes go here (a stopped one keeps them: the gateway wakes a sleeping cluster).
    for (const [hostname, [id, name]] of await ephemeronHttpRoutes(this.paths)) {
      if (!routes.has(id) && !(await this.hasClusterRoute(id)))
        await removeHttpRoute(this.paths, hostname, routeOwner(id, name));
    }
  }

  /** Whether the cluster's route file exists at all (readRoutes skips one that does not parse). */
  private hasClusterRoute(id: string): Promise<boolean> {
    if (!CLUSTER_ID.test(id)) return Promise.resolve(false);
    return access(this.paths.route(id)).then(
      () => true,
      () => false,
    );
  }

  private keyOf(route: ClusterRoute, servicesId: string | undefined): string {
    return JSON.stringify([route.nodeAddress, route.adminKubeconfig, route.clusterId === servicesId]);
  }

  private startController(route: ClusterRoute, servicesId: string | undefined): void {
    const id = route.clusterId;
    const where =
      id === servicesId
        ? { servicesDomain: this.o.servicesDomain }
        : { clusterId: id, clusterDomain: this.o.clusterDomain };
    const make = this.o.makeController ?? ((options: EphemeronControllerOptions) => new EphemeronController(options));
    const controller = make({
      clusterId: id,
      adminKubeconfig: route.adminKubeconfig,
      nodeAddress: route.nodeAddress,
      dataDir: this.o.dataDir,
      host: (name) => ephemeronHost(name, where),
      gatewayHttp: this.o.gatewayHttp,
      clock: this.o.clock,
      log: this.o.log,
      onEvent: (event) => {
        for (const l of this.listeners) l(event);
      },
    });
    const started = controller.start().catch((err: unknown) => {
      this.o.log.warn({ clusterId: id, err: String(err) }, "ephemeron controller did not start");
    });
    this.running.set(id, { key: this.keyOf(route, servicesId), controller, started });
  }

  private async stopController(id: string): Promise<void> {
    const r = this.running.get(id);
    if (!r) return;
    this.running.delete(id);
    await r.controller.stop();
  }

  private async readRoutes(): Promise<Map<string, ClusterRoute>> {
    const routes = new Map<string, ClusterRoute>();
    let files: string[] = [];
    try {
      files = await readdir(this.paths.routesDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    for (const file of files) {
      const id = file.endsWith(".json") ? file.slice(0, -5) : "";
      if (!CLUSTER_ID.test(id)) continue;
      try {
        const route = JSON.parse(await readFile(this.paths.route(id), "utf8")) as ClusterRoute;
        if (
          route.clusterId === id &&
          typeof route.adminKubeconfig === "string" &&
          typeof route.nodeAddress === "string"
        )
          routes.set(id, route);
      } catch {
        // Gone or being replaced between readdir and read (files are renamed into place): next scan.
      }
    }
    return routes;
  }
}
