import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { EMPTY_SERVICES_CONFIG } from "../services/presets.js";
import { FakeDriver } from "../testing/fakes.js";
import { restCall } from "../testing/http.js";
import { startServer } from "./server.js";

/** The server's services cluster and service events, on the fake driver. */
describe("server: services cluster (fake driver)", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tempkube-svcc-srv-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const start = (name: string, extra: Partial<Parameters<typeof startServer>[0]> = {}) =>
    startServer({
      host: "127.0.0.1",
      port: 0,
      dataDir: join(dir, name),
      driver: new FakeDriver(),
      hostCapacity: 10,
      warmPool: 0,
      ...extra,
    });

  it("keeps one by default, made at the first ensure, found again by the next server; events reach the outbox", async () => {
    const first = await start("default", { notifications: { webhookUrl: "http://127.0.0.1:9/hook" } });
    assert.equal(first.servicesDomain, "services.clusters.tempkube.local");
    assert.equal(first.servicesCluster?.clusterId(), undefined);
    const { clusterId } = await first.servicesCluster!.ensure();
    await first.onServiceEvent({ type: "available", clusterId, name: "web", host: "web.x", at: Date.now(), uid: "u" });
    const queued = await first.store.outbox.list(clusterId);
    assert.deepEqual(
      queued.filter((m) => m.event.startsWith("service-")).map((m) => [m.event, m.channel]),
      [["service-available", "webhook"]],
    );
    assert.match(await first.metrics.registry.metrics(), /tempkube_services_available_total\{cluster="services"\} 1/);
    await first.close();
    const second = await start("default");
    assert.equal(second.servicesCluster?.clusterId(), clusterId, "re-adopted from the store");
    await second.close();
  });

  it("with --services-cluster none: no cluster, and the services API says why (503)", async () => {
    const server = await start("none", { servicesCluster: false, services: { config: EMPTY_SERVICES_CONFIG } });
    try {
      assert.equal(server.servicesCluster, undefined);
      const token = (await readFile(server.adminTokenFile, "utf8")).trim();
      const res = await restCall(server.url, token, "GET", "/v1/services");
      assert.equal(res.status, 503, res.text);
      assert.match(String(res.json.message), /--services-cluster none/);
    } finally {
      await server.close();
    }
  });

  it("refuses a services domain where a cluster's id could be", async () => {
    await assert.rejects(
      start("domain", { servicesDomain: "apps.clusters.tempkube.local" }),
      (e: Error & { type?: string }) => e.type === "invalid-input" && /which a cluster's id may be/.test(e.message),
    );
  });
});
