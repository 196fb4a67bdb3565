import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
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
}

export interface RunningServer {
  url: string;
  app: FastifyInstance;
  adminTokenFile: string;
  store: Store;
  close(): Promise<void>;
}

/**
 * Opens the store (SQLite in the data directory), writes an admin token on first start,
 * starts the lifetime controller (which adopts whatever the store says exists) and listens.
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const dir = options.dataDir ?? defaultDataDir();
  await mkdir(dir, { recursive: true });
  const clock = options.clock ?? systemClock;
  const store = await Store.openSqlite(join(dir, "tempkube.db"));
  const adminTokenFile = join(dir, "admin-token");
  if (!existsSync(adminTokenFile)) {
    const { token } = await store.createToken("admin", true, clock.now());
    await writeFile(adminTokenFile, `${token}\n`, { mode: 0o600 });
  }
  const driver = options.driver ?? new LocalRuntime();
  const notificationOptions = options.notifications ?? {};
  const notifier = new Notifier(store, clock, notificationOptions);
  const controller = new LifetimeController(store, driver, clock, { notifier, options: notificationOptions });
  const metrics = new ServiceMetrics(store);
  controller.on("ready", (r: ClusterRecord) => metrics.createSeconds.observe((clock.now() - r.createdAt) / 1000));
  controller.on("expired", (r: ClusterRecord) => metrics.expiries.inc({ outcome: r.desired }));
  notifier.onAttempt = (ok) => metrics.deliveries.inc({ result: ok ? "delivered" : "failed" });
  const app = buildApp(store, new ClusterService(store, controller, driver, clock), metrics);
  notifier.start();
  controller.start();
  const address = await app.listen({ host: options.host, port: options.port });
  return {
    url: address,
    app,
    adminTokenFile,
    store,
    async close() {
      await app.close();
      await controller.stop();
      await notifier.stop();
      await store.close();
    },
  };
}
