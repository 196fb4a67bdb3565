import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { NOTIFICATION_EMAIL_ANNOTATION, serviceNotificationsFor } from "../core/service-notifications.js";
import { ephemeronEvent } from "./ephemeron-controller.js";
import { CREATED_BY_ANNOTATION, type Ephemeron } from "./ephemeron-types.js";

const eph = (annotations?: Record<string, string>, uid: string | null = "0b6c-uid"): Ephemeron => ({
  apiVersion: "qualified.io/v1alpha1",
  kind: "Ephemeron",
  metadata: { name: "web1", ...(uid ? { uid } : {}), ...(annotations ? { annotations } : {}) },
  spec: { expirationTime: "2026-12-02T02:00:00Z", service: { image: "busybox", port: 8080 } },
});

describe("ephemeronEvent", () => {
  it("carries the uid, the expiry and the notification email of the object, as ServiceEvent takes them", () => {
    const e = ephemeronEvent(
      "available",
      "svc12345",
      "web1.services.example",
      eph({ [CREATED_BY_ANNOTATION]: "token:t1", [NOTIFICATION_EMAIL_ANNOTATION]: "dev@example.com" }),
      1_000,
    );
    assert.deepEqual(e, {
      type: "available",
      clusterId: "svc12345",
      name: "web1",
      host: "web1.services.example",
      at: 1_000,
      createdBy: "token:t1",
      uid: "0b6c-uid",
      expirationTime: "2026-12-02T02:00:00Z",
      notificationEmail: "dev@example.com",
    });
    // What the server does with it: the creator is mailed (services cluster), the message names the expiry.
    const out = serviceNotificationsFor(e, {}, "svc12345");
    assert.deepEqual(
      out.map((m) => [m.channel, m.recipient, m.dedupeKey]),
      [["email", "dev@example.com", "service:svc12345/web1:0b6c-uid:service-available:email"]],
    );
    assert.match(String((out[0].payload as { text: string }).text), /expires at 2026-12-02T02:00:00Z/);
    // The same object in a tenant's cluster: anyone there could have written the annotation; no email.
    const tenant = ephemeronEvent(
      "expired",
      "abc00001",
      "web1.abc00001.c.example",
      eph({ [NOTIFICATION_EMAIL_ANNOTATION]: "dev@example.com" }),
      2_000,
    );
    assert.deepEqual(serviceNotificationsFor(tenant, {}, "svc12345"), []);
  });

  it("leaves out what the object does not have (no keys set to undefined or empty)", () => {
    const e = ephemeronEvent("expired", "abc00001", "web1.abc00001.c.example", eph(undefined, null), 5);
    assert.deepEqual(e, {
      type: "expired",
      clusterId: "abc00001",
      name: "web1",
      host: "web1.abc00001.c.example",
      at: 5,
      expirationTime: "2026-12-02T02:00:00Z",
    });
    const empty = ephemeronEvent("expired", "abc00001", "h", eph({ [NOTIFICATION_EMAIL_ANNOTATION]: "" }), 5);
    assert.equal("notificationEmail" in empty, false);
    // A tenant's object with a non-string expiry (schema bypassed): not passed on as something else.
    const odd = eph();
    (odd.spec as unknown as { expirationTime: unknown }).expirationTime = 12;
    assert.equal("expirationTime" in ephemeronEvent("expired", "abc00001", "h", odd, 5), false);
  });
});
