import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { FakeClock } from "../testing/fakes.js";
import { GatewayPaths, type ClusterRoute } from "../gateway/gateway-files.js";
import type { EphemeronControllerOptions } from "./ephemeron-controller.js";
import { readHttpRoute } from "../gateway/route-reader.js";
import { EphemeronHub } from "./ephemeron-hub.js";
import { routeOwner, writeHttpRoute } from "./ephemeron-route.js";
import { ServiceMetrics } from "../server/metrics.js";
import { Store } from "../store/store.js";

describe("EphemeronHub", () => {
  it("runs one controller per running cluster route, and none for a stopped or removed one", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tk-eph-hub-"));
    const paths = new GatewayPaths(dir);
    await mkdir(paths.routesDir, { recursive: true });
    const route = (clusterId: string, phase: ClusterRoute["phase"]) =>
      writeFile(
        paths.route(clusterId),
        JSON.stringify({
          clusterId,
          phase,
          apiserver: "10.0.0.1:6443",
          nodeAddress: "10.0.0.1",
          adminKubeconfig: "/k",
        }),
      );
    const live = new Map<string, EphemeronControllerOptions>();
    const log: string[] = [];
    const clock = new FakeClock();
    let servicesId: string | undefined = "svc001";
    const hub = new EphemeronHub({
      dataDir: dir,
      gatewayHttp: { host: "127.0.0.1", port: 1 },
      clusterDomain: "c.example",
      servicesDomain: "services.c.example",
      servicesClusterId: () => servicesId,
      clock,
      log: { info: () => undefined, warn: () => undefined },
      makeController: (o) => ({
        start: async () => {
          live.set(o.clusterId, o);
          log.push(`start ${o.clusterId}`);
        },
        stop: async () => {
          live.delete(o.clusterId);
          log.push(`stop ${o.clusterId}`);
        },
      }),
    });
    try {
      await route("abc001", "running");
      await route("abc002", "stopped");
      await route("svc001", "running");
      await writeFile(join(paths.routesDir, "../escape.json"), "{}");
      await writeFile(join(paths.routesDir, "NOT-AN-ID.json"), "{}");
      await hub.start();
      assert.deepEqual(hub.clusters(), ["abc001", "svc001"]);
      assert.equal(live.get("abc001")!.host("web"), "web.abc001.c.example");
      assert.equal(live.get("svc001")!.host("web"), "web.services.c.example");

      await route("abc001", "stopped");
      await route("abc002", "running");
      await hub.scanNow();
      assert.deepEqual(hub.clusters(), ["abc002", "svc001"]);

      // No longer the services cluster: its controller starts again with the cluster's own names.
      servicesId = undefined;
      // abc002 is destroyed: its Ephemerons' routes go; a stopped cluster's stay; no one else's are touched.
      const routeOf = (hostname: string, owner: string) =>
        writeHttpRoute(paths, { hostname, target: "10.0.0.1:30000", owner });
      await routeOf("web.abc002.c.example", routeOwner("abc002", "web"));
      await routeOf("web.abc001.c.example", routeOwner("abc001", "web"));
      await routeOf("hand.example", "someone");
      await rm(paths.route("abc002"));
      await hub.scanNow();
      assert.equal(await readHttpRoute(paths, "web.abc002.c.example"), undefined);
      assert.ok(await readHttpRoute(paths, "web.abc001.c.example"));
      assert.ok(await readHttpRoute(paths, "hand.example"));
      assert.deepEqual(hub.clusters(), ["svc001"]);
      assert.equal(live.get("svc001")!.host("web"), "web.svc001.c.example");

      await hub.stop();
      assert.deepEqual(hub.clusters(), []);
      assert.equal(live.size, 0);
      clock.advance(60_000);
      assert.equal(live.size, 0, "no scan after stop");
      assert.deepEqual(log, [
        "start abc001",
        "start svc001",
        "stop abc001",
        "start abc002",
        "stop svc001",
        "stop abc002",
        "start svc001",
        "stop svc001",
      ]);
    } finally {
      await hub.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("counts the Ephemerons of its controllers' caches by where they run, and feeds tempkube_services", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tk-eph-hub-"));
    const paths = new GatewayPaths(dir);
    await mkdir(paths.routesDir, { recursive: true });
    const route = (clusterId: string, phase: ClusterRoute["phase"]) =>
      writeFile(
        paths.route(clusterId),
        JSON.stringify({
          clusterId,
          phase,
          apiserver: "10.0.0.1:6443",
          nodeAddress: "10.0.0.1",
          adminKubeconfig: "/k",
        }),
      );
    const cached = new Map([
      ["svc001", 3],
      ["abc001", 2],
      ["abc002", 4],
      ["abc003", 7],
    ]);
    let servicesId: string | undefined = "svc001";
    const hub = new EphemeronHub({
      dataDir: dir,
      gatewayHttp: { host: "127.0.0.1", port: 1 },
      clusterDomain: "c.example",
      servicesDomain: "services.c.example",
      servicesClusterId: () => servicesId,
      clock: new FakeClock(),
      log: { info: () => undefined, warn: () => undefined },
      makeController: (o) => ({
        start: async () => undefined,
        stop: async () => undefined,
        // abc002's controller is one without a count (a test double, an older controller): it adds nothing.
        ...(o.clusterId === "abc002" ? {} : { count: () => cached.get(o.clusterId) ?? 0 }),
      }),
    });
    const store = await Store.openSqlite(join(dir, "metrics.db"));
    const metrics = new ServiceMetrics(store);
    metrics.servicesNow = () => hub.counts();
    try {
      assert.deepEqual(hub.counts(), { services: 0, tenant: 0 }, "no controllers yet");
      await route("svc001", "running");
      await route("abc001", "running");
      await route("abc002", "running");
      await route("abc003", "stopped"); // no controller: its Ephemerons are not seen
      await hub.start();
      assert.deepEqual(hub.counts(), { services: 3, tenant: 2 });
      const text = await metrics.registry.metrics();
      assert.match(text, /^tempkube_services\{cluster="services"\} 3$/m);
      assert.match(text, /^tempkube_services\{cluster="tenant"\} 2$/m);

      cached.set("abc001", 5);
      await route("abc003", "running");
      await hub.scanNow();
      assert.deepEqual(hub.counts(), { services: 3, tenant: 12 }, "read at each call, not kept");

      servicesId = undefined; // the services cluster is not (or no longer) known: all are tenants'
      assert.deepEqual(hub.counts(), { services: 0, tenant: 15 });
      await hub.stop();
      assert.deepEqual(hub.counts(), { services: 0, tenant: 0 });
      assert.match(await metrics.registry.metrics(), /^tempkube_services\{cluster="tenant"\} 0$/m);
    } finally {
      await hub.stop();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
