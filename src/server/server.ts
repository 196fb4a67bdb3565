import { existsSync } from "node:fs";
import { totalmem } from "node:os";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { systemClock, type Clock } from "../core/clock.js";
import { LifetimeController } from "../controller/lifetime-controller.js";
import { Notifier, type NotifierOptions } from "../controller/notifier.js";
import type { RuntimeDriver } from "../runtime/driver.js";
import { LocalRuntime } from "../runtime/local/local-runtime.js";
import { Store } from "../store/store.js";
import { dataDir as defaultDataDir } from "../util/paths.js";
import type { ClusterRecord } from "../core/cluster-record.js";
import { pooledShape } from "../core/warm-pool.js";
import { TempkubeError } from "../util/errors.js";
import { DEFAULT_KUBERNETES_MINOR } from "../setup/catalogue.js";
import { buildApp } from "./app.js";
import { ServiceMetrics } from "./metrics.js";
import { ClusterService } from "./cluster-service.js";

export interface ServerOptions {
  host: string;
  port: number;
  dataDir?: string;
  driver?: RuntimeDriver;
  clock?: Clock;
  notifications?: NotifierOptions;
  /** Users' clusters running at once on this host; by default from its memory. */
  hostCapacity?: number;
  /** Clusters of the default shape kept booted for creates to claim. */
  warmPool?: number;
  /** A postgres:// URL (or a SQLite file); by default SQLite at <dataDir>/tempkube.db. */
  database?: string;
}

const MiB = 2 ** 20;
/** An idle cluster holds ~350 MiB of its own; 512 MiB each leaves room to work, 2 GiB for the host. */
export function defaultHostCapacity(memoryBytes = totalmem()): number {
  return Math.max(1, Math.floor((memoryBytes - 2048 * MiB) / (512 * MiB)));
}

export interface RunningServer {
  url: string;
  app: FastifyInstance;
  adminTokenFile: string;
  store: Store;
  hostCapacity: number;
  close(): Promise<void>;
}

/**
 * Opens the store (PostgreSQL, or SQLite in the data directory), writes an admin token on first start,
 * starts the lifetime controller (which adopts whatever the store says exists) and listens.
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const dir = options.dataDir ?? defaultDataDir();
  await mkdir(dir, { recursive: true });
  const clock = options.clock ?? systemClock;
  // Uploads cut short by a crash are of no use to anyone.
  await rm(join(dir, "uploads"), { recursive: true, force: true });
  const store = await Store.open(options.database ?? join(dir, "tempkube.db"));
  const adminTokenFile = join(dir, "admin-token");
  if (!existsSync(adminTokenFile)) {
    const { token } = await store.createToken("admin", true, clock.now());
    await writeFile(adminTokenFile, `${token}\n`, { mode: 0o600 });
  }
  const driver = options.driver ?? new LocalRuntime();
  const notificationOptions = options.notifications ?? {};
  const notifier = new Notifier(store, clock, notificationOptions);
  const controller = new LifetimeController(store, driver, clock, { notifier, options: notificationOptions },
    { size: options.warmPool ?? 0, shape: pooledShape(DEFAULT_KUBERNETES_MINOR) });
  const hostCapacity = options.hostCapacity ?? defaultHostCapacity();
  const metrics = new ServiceMetrics(store);
  controller.on("ready", (r: ClusterRecord) => metrics.createSeconds.observe((clock.now() - r.createdAt) / 1000));
  controller.on("expired", (r: ClusterRecord) => metrics.expiries.inc({ outcome: r.desired }));
  notifier.onAttempt = (ok) => metrics.deliveries.inc({ result: ok ? "delivered" : "failed" });
  const app = await buildApp(store, new ClusterService(store, controller, driver, clock, { hostCapacity, notifications: notificationOptions }), metrics,
    join(dir, "uploads"));
  // The address first: a second server started by mistake must fail before its controller
  // acts on the store (it would retire the first one's warm pool, for a start).
  let address: string;
  try {
    address = await app.listen({ host: options.host, port: options.port });
  } catch (err) {
    await app.close();
    await store.close();
    if ((err as NodeJS.ErrnoException).code === "EADDRINUSE") {
      throw new TempkubeError("invalid-input", `${options.host}:${options.port} is already in use (another tempkube server?); choose another with --listen`);
    }
    throw err;
  }
  notifier.start();
  controller.start();
  return {
    url: address,
    app,
    adminTokenFile,
    store,
    hostCapacity,
    async close() {
      await app.close();
      await controller.stop();
      await notifier.stop();
      await store.close();
    },
  };
}
