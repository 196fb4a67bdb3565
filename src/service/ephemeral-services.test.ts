import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { NOTIFICATION_EMAIL_ANNOTATION } from "../core/service-notifications.js";
import { GROUP_LABEL } from "../services/ephemeron-types.js";
import { FakeEphemeronApi } from "../testing/fake-ephemeron-api.js";
import { FakeClock } from "../testing/fakes.js";
import { claimsCaller, EphemeralServices, servicePhase } from "./ephemeral-services.js";

const presets = new Map([
  ["web", { image: "busybox:1.37", port: 8080, podLabels: { team: "web" } }],
  ["secure", { image: "busybox:1.37", port: 8443, tlsSecretName: "web-tls" }],
]);

describe("EphemeralServices", () => {
  it("puts the group on the pod beside the preset's labels, and counts the lifetime from the clock", async () => {
    const clock = new FakeClock(Date.UTC(2026, 11, 1, 12));
    const api = new FakeEphemeronApi(() => clock.now());
    const services = new EphemeralServices({ getApi: async () => api, config: { presets }, clock });
    const e = await services.create(claimsCaller({ sub: "u1.app", gid: "g1.app" }), {
      preset: "web",
      lifetimeMinutes: 90,
    });
    assert.deepEqual(e.spec.service.podLabels, { team: "web", [GROUP_LABEL]: "g1.app" });
    assert.equal(e.spec.expirationTime, "2026-12-01T13:30:00.000Z");
    assert.deepEqual(presets.get("web")!.podLabels, { team: "web" }, "the preset itself is left alone");
    const plain = await services.create(claimsCaller({ sub: "u2.app", gid: null }), {
      preset: "web",
      lifetimeMinutes: 1,
    });
    assert.deepEqual(plain.spec.service.podLabels, { team: "web" });
  });

  it("tells onChange of each service made and deleted (the /metrics counts), not of refused ones", async () => {
    const api = new FakeEphemeronApi();
    const changes: string[] = [];
    const services = new EphemeralServices({
      getApi: async () => api,
      config: { presets },
      onChange: (what) => changes.push(what),
    });
    const who = claimsCaller({ sub: "u1.app", gid: null });
    const e = await services.create(who, { preset: "web", lifetimeMinutes: 5 });
    await assert.rejects(services.create(who, { preset: "nope", lifetimeMinutes: 5 }));
    await services.delete(who, e.metadata.name);
    await assert.rejects(services.delete(who, e.metadata.name));
    assert.deepEqual(changes, ["created", "deleted"]);
  });

  it("shows the URL through the gateway's ports, https for a service with its own certificate", async () => {
    const api = new FakeEphemeronApi();
    const who = claimsCaller({ sub: "u.app", gid: null });
    const at = (gateway?: { httpPort: number; httpsPort?: number }) =>
      new EphemeralServices({ getApi: async () => api, config: { presets }, gateway });
    const web = await at().create(who, { preset: "web", lifetimeMinutes: 5 });
    const secure = await at().create(who, { preset: "secure", lifetimeMinutes: 5 });
    api.serve(web.metadata.name, "w.services.example");
    api.serve(secure.metadata.name, "s.services.example");
    const url = async (s: EphemeralServices, id: string) => s.view((await api.get(id))!).url;
    assert.equal(await url(at(), web.metadata.name), "http://w.services.example/");
    assert.equal(await url(at({ httpPort: 8080 }), web.metadata.name), "http://w.services.example:8080/");
    assert.equal(
      await url(at({ httpPort: 80, httpsPort: 8443 }), secure.metadata.name),
      "https://s.services.example:8443/",
    );
    assert.equal(at().view((await api.get(secure.metadata.name))!).tls, true);
  });

  it("derives the phase from the conditions and the host annotation", async () => {
    const api = new FakeEphemeronApi();
    const services = new EphemeralServices({ getApi: async () => api, config: { presets } });
    const id = (await services.create(claimsCaller({ sub: "u.app", gid: null }), { preset: "web", lifetimeMinutes: 5 }))
      .metadata.name;
    const phase = async () => servicePhase((await api.get(id))!);
    assert.equal(await phase(), "pending");
    api.report(id, "PodReady", "False", "ContainerCreating");
    assert.equal(await phase(), "pending", "a reason it gets over");
    api.report(id, "PodReady", "True");
    assert.equal(await phase(), "starting");
    api.report(id, "Available", "False", "InvalidSpec", "port 0");
    assert.equal(await phase(), "failed");
    api.serve(id, "x.example");
    assert.equal(await phase(), "available");
    api.objects.get(id)!.metadata.deletionTimestamp = new Date().toISOString();
    assert.equal(await phase(), "deleting");
  });

  it("answers 503 (host) when the services cluster cannot be had, whatever the cause", async () => {
    const services = new EphemeralServices({
      getApi: async () => {
        throw new Error("kube-apiserver did not start");
      },
      config: { presets },
    });
    await assert.rejects(
      services.list(claimsCaller({ sub: "u.app", gid: null })),
      (e: Error & { type?: string }) =>
        e.type === "host" && e.message === "the services cluster is not available: kube-apiserver did not start",
    );
  });

  it("checks a notificationEmail itself (callers besides REST): refused before anything is made", async () => {
    const api = new FakeEphemeronApi();
    const services = new EphemeralServices({ getApi: async () => api, config: { presets } });
    const who = claimsCaller({ sub: "u.app", gid: null });
    const refused = (notificationEmail: unknown, re: RegExp) =>
      assert.rejects(
        services.create(who, { preset: "web", lifetimeMinutes: 5, notificationEmail: notificationEmail as string }),
        (e: Error & { type?: string }) => e.type === "invalid-input" && re.test(e.message),
      );
    await refused("a,b@example.com", /^body\/notificationEmail must be one plain address/);
    await refused("Dev <dev@example.com>", /^body\/notificationEmail must be one plain address/);
    await refused("a@b.c\r\nBcc: x@y.z", /^body\/notificationEmail must be one plain address/);
    await refused(`${"a".repeat(250)}@example.com`, /^body\/notificationEmail is longer than 254 characters$/);
    await refused(42, /^body\/notificationEmail must be a string$/);
    assert.equal(api.objects.size, 0);
    const e = await services.create(who, { preset: "web", lifetimeMinutes: 5, notificationEmail: "dev@example.com" });
    assert.equal(e.metadata.annotations?.[NOTIFICATION_EMAIL_ANNOTATION], "dev@example.com");
    assert.equal(services.view(e).notificationEmail, "dev@example.com");
  });
});
