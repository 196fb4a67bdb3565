import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { serviceNotificationsFor, type ServiceEvent } from "./service-notifications.js";

const AT = Date.UTC(2026, 0, 1, 12);
const HOOK = "https://hooks.example/tempkube";
const available: ServiceEvent = {
  type: "available",
  clusterId: "svc12345",
  name: "d4hq9b2m5c5s73ecpm0g",
  host: "d4hq9b2m5c5s73ecpm0g.services.clusters.tempkube.local",
  createdBy: "alice.runner",
  at: AT,
  uid: "5f0c-uid",
  expirationTime: "2026-01-01T13:00:00Z",
  notificationEmail: "alice@example.com",
};

describe("service notifications", () => {
  it("tells the webhook and the address the service was created with, once per object and event", () => {
    const out = serviceNotificationsFor(available, { webhookUrl: HOOK }, "svc12345");
    assert.deepEqual(
      out.map((m) => [m.channel, m.recipient, m.event, m.dedupeKey]),
      [
        [
          "email",
          "alice@example.com",
          "service-available",
          "service:svc12345/d4hq9b2m5c5s73ecpm0g:5f0c-uid:service-available:email",
        ],
        [
          "webhook",
          HOOK,
          "service-available",
          "service:svc12345/d4hq9b2m5c5s73ecpm0g:5f0c-uid:service-available:webhook",
        ],
      ],
    );
    assert.deepEqual(out[0].payload, {
      event: "service-available",
      clusterId: "svc12345",
      service: "d4hq9b2m5c5s73ecpm0g",
      host: available.host,
      url: `http://${available.host}`,
      uid: "5f0c-uid",
      expirationTime: "2026-01-01T13:00:00Z",
      createdBy: "alice.runner",
      at: "2026-01-01T12:00:00.000Z",
      subject: `service d4hq9b2m5c5s73ecpm0g is available at http://${available.host}`,
      text: `Your service d4hq9b2m5c5s73ecpm0g serves at http://${available.host} since 2026-01-01T12:00:00.000Z. It expires at 2026-01-01T13:00:00Z.`,
    });
    const expired = serviceNotificationsFor({ ...available, type: "expired", url: "https://x" }, {}, "svc12345");
    assert.equal(expired.length, 1, "no webhook configured: the email only");
    assert.equal(expired[0].event, "service-expired");
    assert.match(String(expired[0].payload.text), /expired at 2026-01-01T12:00:00.000Z; it was deleted/);
    assert.equal(expired[0].payload.url, "https://x");
  });

  it("never emails for a tenant's cluster (anyone there could write the annotation), nor a malformed address", () => {
    const tenant = serviceNotificationsFor({ ...available, clusterId: "tenant01" }, { webhookUrl: HOOK }, "svc12345");
    assert.deepEqual(
      tenant.map((m) => m.channel),
      ["webhook"],
    );
    assert.deepEqual(serviceNotificationsFor(available, {}, undefined), [], "no services cluster known: no email");
    for (const bad of ["a@b.c\r\nBcc: x@y.z", "a@b.c, x@y.z", "Alice <a@b.c>", "nobody", "a@b"])
      assert.deepEqual(
        serviceNotificationsFor({ ...available, notificationEmail: bad }, {}, "svc12345"),
        [],
        JSON.stringify(bad),
      );
  });

  it("tells apart events of an object without a uid by their time", () => {
    const { uid: _, ...noUid } = available;
    const [a] = serviceNotificationsFor(noUid, { webhookUrl: HOOK }, undefined);
    const [b] = serviceNotificationsFor({ ...noUid, at: AT + 1 }, { webhookUrl: HOOK }, undefined);
    assert.notEqual(a.dedupeKey, b.dedupeKey);
  });
});
