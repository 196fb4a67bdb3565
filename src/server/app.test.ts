import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { FakeGatewayLink } from "../testing/fake-gateway-link.js";
import { FakeClock, FakeDriver, fakeKubeconfig } from "../testing/fakes.js";
import { restCall } from "../testing/http.js";
import { startServer, type RunningServer } from "./server.js";

/** The HTTP surface with a fake driver: tokens, limits, capacity, OpenAPI. (Real clusters: server.e2e.test.ts.) */
describe("REST API: tokens, limits, capacity, OpenAPI (fake driver)", () => {
  let server: RunningServer;
  let dir: string;
  let admin: string;

  const call = (token: string | undefined, method: string, path: string, body?: unknown) =>
    restCall(server.url, token, method, path, body);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tempkube-app-"));
    server = await startServer({
      host: "127.0.0.1",
      port: 0,
      dataDir: dir,
      driver: new FakeDriver(),
      hostCapacity: 3,
      idleMinutes: 20,
    });
    admin = (await readFile(server.adminTokenFile, "utf8")).trim();
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("refuses to start a second server on the same address, before it touches any cluster", async () => {
    const driver = new FakeDriver();
    const port = Number(new URL(server.url).port);
    await assert.rejects(startServer({ host: "127.0.0.1", port, dataDir: dir, driver, warmPool: 2 }), (e: Error) =>
      /127\.0\.0\.1:\d+ is already in use \(another tempkube server\?\)/.test(e.message),
    );
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(driver.calls, [], "the refused server provisioned or destroyed nothing");
  });

  it("streams an operation with ?follow=true: the cluster at each phase, then its kubeconfig, in one request", async () => {
    const created = await call(admin, "POST", "/v1/clusters?follow=true", { ttlMinutes: 10 });
    assert.equal(created.status, 201);
    assert.match(created.type, /application\/x-ndjson/);
    const lines = created.text
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { cluster?: { id: string; phase: string }; kubeconfig?: string });
    const phases = lines.filter((l) => l.cluster).map((l) => l.cluster!.phase);
    assert.equal(phases[0], "pending");
    assert.equal(phases.at(-1), "running");
    assert.equal(new Set(phases).size, phases.length, "a line per change of phase, not per poll");
    const id = lines[0].cluster!.id;
    assert.equal(lines.at(-1)!.kubeconfig, fakeKubeconfig(id));
    const stopped = await call(admin, "POST", `/v1/clusters/${id}/stop?follow=true`);
    const last = JSON.parse(stopped.text.trim().split("\n").at(-1)!) as { cluster: { phase: string } };
    assert.equal(last.cluster.phase, "stopped");
    assert.ok(!stopped.text.includes("kubeconfig"), "a stop hands out no kubeconfig");
    const refused = await call(admin, "POST", "/v1/clusters?follow=true", { ttlMinutes: 0 });
    assert.equal(refused.status, 400, "bad input is refused before anything streams");
    await call(admin, "DELETE", `/v1/clusters/${id}?wait=true`);
  });

  it("serves an OpenAPI document made from the validating schemas", async () => {
    const doc = await call(undefined, "GET", "/openapi.json");
    assert.equal(doc.status, 200);
    assert.equal(doc.json.openapi, "3.0.3");
    const create = doc.json.paths["/v1/clusters"].post;
    const schema = create.requestBody.content["application/json"].schema;
    assert.deepEqual(schema.properties.size.enum, ["1-small", "1-mid", "1-large"]);
    assert.equal(schema.properties.ttlMinutes.minimum, 1);
    assert.deepEqual([schema.properties.idleMinutes.minimum, schema.properties.idleMinutes.maximum], [0, 1440]);
    assert.equal(schema.properties.idleMinutes.default, undefined, "absent means the server's default");
    const shown = create.responses["201"].content["application/json"].schema;
    assert.equal(shown.properties.idleMinutes.type, "integer");
    assert.ok(shown.properties.phase.enum.includes("sleeping"));
    assert.ok(create.responses["403"] && create.responses["429"]);
    for (const path of [
      "/v1/clusters/{id}",
      "/v1/clusters/{id}/kubeconfig",
      "/v1/clusters/{id}/extend",
      "/v1/tokens",
      "/v1/tokens/{id}",
    ]) {
      assert.ok(doc.json.paths[path], `${path} is documented`);
    }
    assert.equal(doc.json.paths["/openapi.json"], undefined);
  });

  it("lets admins create, list and revoke tokens; others get 403; secrets are shown once", async () => {
    const made = await call(admin, "POST", "/v1/tokens", {
      name: "ci",
      maxClusters: 1,
      maxTtlMinutes: 30,
      sizes: ["1-small"],
    });
    assert.equal(made.status, 201);
    assert.match(made.json.token, /^tk_/);
    assert.deepEqual(made.json.limits, {
      maxClusters: 1,
      maxTtlMinutes: 30,
      sizes: ["1-small"],
      privileged: false,
      maxServices: 5,
      maxServiceMinutes: 24 * 60,
    });
    const ci = made.json.token as string;
    assert.equal((await call(ci, "GET", "/v1/tokens")).status, 403);
    assert.match((await call(ci, "POST", "/v1/tokens", { name: "x" })).json.message, /not an admin token/);
    assert.equal((await call(ci, "GET", "/v1/tokens/self")).json.name, "ci");
    const list = await call(admin, "GET", "/v1/tokens");
    assert.deepEqual(
      list.json.items.map((t: { name: string }) => t.name),
      ["admin", "ci"],
    );
    assert.ok(!list.text.includes(ci), "no secrets in the list");
    assert.match(
      (await call(admin, "POST", "/v1/tokens", { name: "bad", sizes: ["huge"] })).json.message,
      /body\/sizes\/0 must be equal to one of the allowed values/,
    );

    // The limits hold over HTTP: 403 naming the limit; nothing made.
    const privileged = await call(ci, "POST", "/v1/clusters", { size: "1-small", ttlMinutes: 10, privileged: true });
    assert.equal(privileged.status, 403);
    assert.match(privileged.json.message, /privileged/);
    assert.equal((await call(ci, "POST", "/v1/clusters", { size: "1-mid", ttlMinutes: 10 })).status, 403);
    const ok = await call(ci, "POST", "/v1/clusters", {
      size: "1-small",
      ttlMinutes: 10,
      labels: { team: "a" },
      wait: true,
    });
    assert.equal(ok.status, 201);
    assert.equal(ok.json.phase, "running");
    const quota = await call(ci, "POST", "/v1/clusters", { size: "1-small", ttlMinutes: 10 });
    assert.equal(quota.status, 403);
    assert.match(quota.json.message, /quota/);
    assert.equal((await call(ci, "GET", "/v1/clusters")).json.items.length, 1);
    assert.deepEqual(
      (await call(ci, "GET", "/v1/clusters?label=team=a")).json.items.map((c: { id: string }) => c.id),
      [ok.json.id],
    );
    assert.equal((await call(ci, "GET", "/v1/clusters?label=team")).status, 400);
    const got = await call(ci, "GET", `/v1/clusters/${ok.json.id}`);
    assert.equal(got.json.endpoint, "https://fake");
    assert.deepEqual(got.json.labels, { team: "a" });
    const kubeconfig = await call(ci, "GET", `/v1/clusters/${ok.json.id}/kubeconfig`);
    assert.equal(kubeconfig.text, fakeKubeconfig(ok.json.id));
    assert.match(kubeconfig.type, /yaml/);

    const revoked = await call(admin, "DELETE", `/v1/tokens/${made.json.id}`);
    assert.equal(revoked.status, 200);
    assert.ok(revoked.json.revokedAt);
    assert.equal((await call(ci, "GET", "/v1/clusters")).status, 401, "a revoked token is refused");
    assert.equal((await call(admin, "DELETE", `/v1/tokens/${made.json.id}`)).status, 409);
    assert.equal((await call(admin, "DELETE", "/v1/tokens/999")).status, 404);
    assert.match((await call(admin, "DELETE", "/v1/tokens/1")).json.message, /last admin token/);
  });

  it("takes idleMinutes (REST) and minutes-to-idle (SMEK-style), the server's default otherwise, and shows sleeping", async () => {
    const bad = await call(admin, "POST", "/v1/clusters", { idleMinutes: -1 });
    assert.equal(bad.status, 400);
    assert.match(bad.json.message, /body\/idleMinutes must be >= 0/);
    assert.match(
      (await call(admin, "POST", "/v1/clusters", { idleMinutes: "soon" })).json.message,
      /body\/idleMinutes must be integer/,
    );
    const badSmek = await call(admin, "POST", "/create", {
      "notification-email": "a@example.com",
      "minutes-to-idle": -3,
    });
    assert.equal(badSmek.status, 400);
    assert.match(
      badSmek.json.message,
      /^minutes-to-idle must be a whole number of minutes from 0 \(never sleep\) to 1440, not -3/,
    );
    assert.match(
      (await call(admin, "POST", "/create", { "notification-email": "a@example.com", "minutes-to-idle": "x" })).json
        .message,
      /minutes-to-idle must be a number/,
    );

    const given = await call(admin, "POST", "/v1/clusters", { idleMinutes: 5, ttlMinutes: 10, wait: true });
    assert.equal(given.json.idleMinutes, 5);
    const byDefault = await call(admin, "POST", "/v1/clusters", { ttlMinutes: 10 });
    assert.equal(byDefault.json.idleMinutes, 20, "the server's --idle-minutes");
    assert.equal((await call(admin, "DELETE", `/v1/clusters/${byDefault.json.id}?wait=true`)).status, 200);
    const smek = await call(admin, "POST", "/create", {
      "notification-email": "a@example.com",
      "minutes-to-live": 10,
      "minutes-to-idle": "7",
      "keep-cluster": false,
    });
    assert.equal(smek.status, 200);
    const smekId = /kubeconfig-([a-z0-9]+)/.exec(smek.text)![1];
    assert.equal((await call(admin, "GET", `/v1/clusters/${smekId}`)).json.idleMinutes, 7);

    await server.store.clusters.update(given.json.id, { phase: "sleeping", sleptAt: Date.now() }, { now: Date.now() });
    assert.equal((await call(admin, "GET", `/v1/clusters/${given.json.id}`)).json.phase, "sleeping");
    const listed = (await call(admin, "GET", "/v1/clusters")).json.items.find(
      (c: { id: string }) => c.id === given.json.id,
    );
    assert.equal(listed.phase, "sleeping");
    const smekListed = (await call(admin, "GET", "/list")).json.find(
      (c: Record<string, string>) => c["cluster-id"] === given.json.id,
    );
    assert.equal(smekListed["cluster-status"], "sleeping");
    assert.equal((await call(admin, "GET", `/v1/clusters/${given.json.id}/kubeconfig`)).status, 200);
    const woken = await call(admin, "POST", `/v1/clusters/${given.json.id}/start?wait=true`);
    assert.equal(woken.json.phase, "running");
    for (const id of [given.json.id, smekId])
      assert.equal((await call(admin, "DELETE", `/v1/clusters/${id}?wait=true`)).json.phase, "terminated");
  });

  it("answers 429 with the reason at host capacity, and makes nothing", async () => {
    const before = (await call(admin, "GET", "/v1/clusters")).json.items.length as number;
    const running = (await call(admin, "GET", "/v1/clusters")).json.items.filter(
      (c: { desired: string }) => c.desired === "running",
    ).length as number;
    for (let i = running; i < 3; i++) assert.equal((await call(admin, "POST", "/v1/clusters", {})).status, 201);
    const full = await call(admin, "POST", "/v1/clusters", {});
    assert.equal(full.status, 429);
    assert.match(full.json.message, /host capacity reached: 3 of 3/);
    assert.equal((await call(admin, "GET", "/v1/clusters")).json.items.length, before + 3 - running);
  });
});

describe("sleep and wake through the server (fake driver, fake clock, fake gateway)", () => {
  it("puts an idle cluster to sleep, wakes it on a request, and counts both in /metrics", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tempkube-app-sleep-"));
    const clock = new FakeClock();
    const driver = new FakeDriver();
    const gatewayLink = new FakeGatewayLink(driver.calls, clock.now());
    const server = await startServer({
      host: "127.0.0.1",
      port: 0,
      dataDir: dir,
      driver,
      clock,
      hostCapacity: 3,
      gatewayLink,
    });
    try {
      const admin = (await readFile(server.adminTokenFile, "utf8")).trim();
      const call = (method: string, path: string, body?: unknown) => restCall(server.url, admin, method, path, body);
      /** Polls (a deadline, not a timing assertion) while `step` moves things on. */
      const until = async (phase: string, id: string, step: () => void) => {
        for (let i = 0; i < 500; i++) {
          const r = await call("GET", `/v1/clusters/${id}`);
          if (r.json.phase === phase) return;
          step();
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        assert.fail(`cluster ${id} never became ${phase}`);
      };
      const made = await call("POST", "/v1/clusters", { idleMinutes: 1, ttlMinutes: 60 });
      await until("running", made.json.id, () => undefined);
      await until("sleeping", made.json.id, () => clock.advance(10_000));
      gatewayLink.requestWake(made.json.id);
      await until("running", made.json.id, () => undefined);
      // Counted once each operation has ended, which may be a moment after the phase shows.
      const counted = (text: string) =>
        /^tempkube_cluster_sleeps_total 1$/m.test(text) &&
        /^tempkube_cluster_wakes_total\{result="running"\} 1$/m.test(text);
      let metrics = "";
      for (let i = 0; i < 200 && !counted(metrics); i++) {
        if (i) await new Promise((resolve) => setTimeout(resolve, 10));
        metrics = (await restCall(server.url, undefined, "GET", "/metrics")).text;
      }
      assert.match(metrics, /^tempkube_cluster_sleeps_total 1$/m);
      assert.match(metrics, /^tempkube_cluster_wakes_total\{result="running"\} 1$/m);
    } finally {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
