import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Notifier } from "../controller/notifier.js";
import { ServiceMetrics } from "../server/metrics.js";
import { Store } from "../store/store.js";
import { FakeClock } from "../testing/fakes.js";
import { notifyServiceEvent } from "./service-events.js";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "tempkube-svcev-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

it("an Ephemeron controller's events reach the webhook through the outbox, once each, and are counted", async () => {
  const received: { body: Record<string, unknown>; key: string | undefined }[] = [];
  const hook = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      received.push({
        body: JSON.parse(body) as Record<string, unknown>,
        key: req.headers["idempotency-key"] as string,
      });
      res.end();
    });
  });
  await new Promise<void>((r) => hook.listen(0, "127.0.0.1", r));
  const webhookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;
  const store = await Store.openSqlite(join(dir, "events.db"));
  const clock = new FakeClock();
  const notifier = new Notifier(store, clock, { webhookUrl });
  notifier.start();
  const metrics = new ServiceMetrics(store);
  const sinks = { store, policy: { webhookUrl }, notifier, metrics, servicesClusterId: () => "svc12345", clock };
  const base = { clusterId: "svc12345", name: "web1", host: "web1.services.example", at: clock.now(), uid: "u1" };
  await notifyServiceEvent(sinks, { ...base, type: "available" });
  await notifyServiceEvent(sinks, { ...base, type: "available" });
  await notifyServiceEvent(sinks, { ...base, type: "expired", at: clock.now() + 60_000 });
  await notifyServiceEvent(sinks, { ...base, clusterId: "tenant01", host: "web1.tenant01.example", type: "expired" });
  for (let i = 0; i < 100 && received.length < 3; i++) await new Promise((r) => setTimeout(r, 20));
  await notifier.stop();
  hook.close();
  assert.deepEqual(
    received.map((r) => [r.body.event, r.body.clusterId, r.body.service]).sort(),
    [
      ["service-available", "svc12345", "web1"],
      ["service-expired", "svc12345", "web1"],
      ["service-expired", "tenant01", "web1"],
    ].sort(),
    "the repeated event went out once",
  );
  assert.ok(received.every((r) => r.key?.startsWith("service:")));
  assert.ok((await store.outbox.list()).every((m) => m.sentAt !== null));
  const text = await metrics.registry.metrics();
  assert.match(text, /tempkube_services_available_total\{cluster="services"\} 2/);
  assert.match(text, /tempkube_services_expired_total\{cluster="services"\} 1/);
  assert.match(text, /tempkube_services_expired_total\{cluster="tenant"\} 1/);
  assert.doesNotMatch(text, /^tempkube_services\{/m, "no gauge series until someone counts services");
  metrics.servicesNow = () => ({ services: 3, tenant: 1 });
  assert.match(await metrics.registry.metrics(), /tempkube_services\{cluster="services"\} 3/);
  await store.close();
});
