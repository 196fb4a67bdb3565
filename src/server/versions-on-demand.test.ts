import assert from "node:assert/strict";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { KUBERNETES_RELEASES } from "../setup/catalogue.js";
import { tempkube } from "../testing/cli.js";
import { FakeDriver } from "../testing/fakes.js";
import { restCall } from "../testing/http.js";
import { startServer, type RunningServer } from "./server.js";

/**
 * Versions on demand: a create naming an offered version whose binaries are not on the
 * server's host is answered at once with 409 `not-installed` and the command that installs
 * it, and leaves no record. The server runs its real local runtime over an empty cache of
 * its own (TEMPKUBE_CACHE), so nothing is installed and nothing could boot.
 */
describe("a create of a version that is not installed (local runtime, empty cache)", () => {
  let server: RunningServer;
  let dir: string;
  let admin: string;
  let saved: string | undefined;
  const version = KUBERNETES_RELEASES.find((r) => r.minor === "1.36")!;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tempkube-ondemand-"));
    saved = process.env.TEMPKUBE_CACHE;
    process.env.TEMPKUBE_CACHE = join(dir, "cache");
    server = await startServer({ host: "127.0.0.1", port: 0, dataDir: join(dir, "data"), hostCapacity: 3 });
    admin = (await readFile(server.adminTokenFile, "utf8")).trim();
  });
  after(async () => {
    await server.close();
    if (saved === undefined) delete process.env.TEMPKUBE_CACHE;
    else process.env.TEMPKUBE_CACHE = saved;
    await rm(dir, { recursive: true, force: true });
  });

  const installCommand = /run on the host: tempkube versions install 1\.36$/;

  it("REST: 409 not-installed naming the command, in the request, with no cluster recorded", async () => {
    for (const path of ["/v1/clusters", "/v1/clusters?follow=true"]) {
      const started = Date.now();
      const res = await restCall(server.url, admin, "POST", path, { kubernetesVersion: "1.36", ttlMinutes: 5 });
      assert.equal(res.status, 409, `${path}: ${res.text}`);
      assert.equal(res.json.error, "not-installed");
      assert.match(
        res.json.message,
        new RegExp(`^Kubernetes ${version.version.replace(/\./g, "\\.")} is offered but not installed`),
      );
      assert.match(res.json.message, installCommand);
      assert.ok(Date.now() - started < 2000, "answered at once, not after a provision");
    }
    const list = await restCall(server.url, admin, "GET", "/v1/clusters");
    assert.deepEqual(list.json.items, [], "no record left behind");
    assert.deepEqual(await readdir(join(dir, "data", "clusters")).catch(() => []), [], "nothing made on disk");
  });

  it("SMEK /create: the same 409", async () => {
    const res = await restCall(server.url, admin, "POST", "/create", {
      "k8s-version": "1.36",
      "minutes-to-live": 5,
      "notification-email": "ci@example.com",
    });
    assert.equal(res.status, 409, res.text);
    assert.equal(res.json.error, "not-installed");
    assert.match(res.json.message, installCommand);
    assert.deepEqual((await restCall(server.url, admin, "GET", "/list")).json, []);
  });

  it("CLI create: the message and its own exit code (9)", async () => {
    const env = { TEMPKUBE_URL: server.url, TEMPKUBE_TOKEN: admin };
    for (const args of [
      ["create", "--version", "1.36", "--ttl", "5m"],
      ["create", "--version", "1.36", "--ttl", "5m", "--no-wait"],
    ]) {
      const res = await tempkube(args, env);
      assert.equal(res.code, 9, `${args.join(" ")}: ${res.stderr}`);
      assert.match(
        res.stderr,
        /is offered but not installed on this host; run on the host: tempkube versions install 1\.36/,
      );
    }
    assert.deepEqual((await restCall(server.url, admin, "GET", "/v1/clusters")).json.items, []);
  });

  it("an unknown version stays a 400", async () => {
    const res = await restCall(server.url, admin, "POST", "/v1/clusters", { kubernetesVersion: "1.29" });
    assert.equal(res.status, 400);
  });
});

describe("the nodes' kubelet in the answer (fake driver)", () => {
  let server: RunningServer;
  let dir: string;
  let admin: string;
  const driver = new FakeDriver();
  const reason = "nodes run kubelet v1.36.3: Kubernetes 1.37's kubelet does not run on this cgroup v1 host";

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tempkube-kubelet-view-"));
    driver.versions.set("1.37", { kubelet: { version: "v1.36.3", reason } });
    server = await startServer({ host: "127.0.0.1", port: 0, dataDir: dir, driver, hostCapacity: 3 });
    admin = (await readFile(server.adminTokenFile, "utf8")).trim();
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("shows kubeletVersion and why only when the nodes do not run the control plane's release", async () => {
    const other = await restCall(server.url, admin, "POST", "/v1/clusters", { kubernetesVersion: "1.37", wait: true });
    assert.equal(other.status, 201, other.text);
    assert.equal(other.json.kubeletVersion, "v1.36.3");
    assert.equal(other.json.kubeletReason, reason);
    const own = await restCall(server.url, admin, "POST", "/v1/clusters", { kubernetesVersion: "1.35", wait: true });
    assert.equal(own.status, 201, own.text);
    assert.equal("kubeletVersion" in own.json, false, "absent when the nodes run their own release");
    const got = await restCall(server.url, admin, "GET", `/v1/clusters/${other.json.id}`);
    assert.equal(got.json.kubeletVersion, "v1.36.3");
    const listed = await restCall(server.url, admin, "GET", "/v1/clusters");
    const kubeletOf = (id: string) =>
      (listed.json.items as { id: string; kubeletVersion?: string }[]).find((c) => c.id === id)?.kubeletVersion;
    assert.equal(kubeletOf(other.json.id), "v1.36.3");
    assert.equal(kubeletOf(own.json.id), undefined);
    const smek = await restCall(server.url, admin, "GET", "/list");
    const smekOf = (id: string) =>
      (smek.json as unknown as Record<string, string>[]).find((c) => c["cluster-id"] === id)?.["kubelet-version"];
    assert.equal(smekOf(other.json.id), "v1.36.3");
    assert.equal(smekOf(own.json.id), undefined);
    const cli = await tempkube(["get", other.json.id], { TEMPKUBE_URL: server.url, TEMPKUBE_TOKEN: admin });
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /Kubernetes 1\.37 \(nodes: kubelet v1\.36\.3\)/);
    assert.ok(cli.stdout.includes(reason), cli.stdout);
  });

  it("a driver's refusal of a version is the create's answer, and nothing is provisioned", async () => {
    const before = driver.calls.length;
    const { TempkubeError } = await import("../util/errors.js");
    driver.versions.set("1.34", { refuse: new TempkubeError("not-installed", "Kubernetes v1.34.4 is not here") });
    const res = await restCall(server.url, admin, "POST", "/v1/clusters", { kubernetesVersion: "1.34" });
    assert.equal(res.status, 409);
    assert.equal(res.json.error, "not-installed");
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(driver.calls.slice(before), [], "the controller was given nothing to provision");
  });
});
