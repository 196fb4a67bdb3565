import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { LocalRuntime } from "../runtime/local/local-runtime.js";
import { restCall } from "../testing/http.js";
import { unlessRoot } from "../testing/root.js";
import { Kubectl } from "../testing/kubectl.js";
import { run } from "../util/exec.js";
import { startServer, type RunningServer } from "./server.js";

/** The real server on loopback, driving the local runtime, as a CI job would use it. */
describe(
  "tempkube server, end to end",
  { timeout: 15 * 60_000, skip: unlessRoot("the server boots real clusters") },
  () => {
    let server: RunningServer;
    let dir: string;
    let token: string;
    let runtime: LocalRuntime;
    const created: string[] = [];

    const api = (method: string, path: string, body?: unknown, auth = true) =>
      restCall(server.url, auth ? token : undefined, method, path, body);

    before(async () => {
      // The data dir holds the clusters too (short: the kubelet's unix sockets live deep under it, within 108 bytes).
      dir = await mkdtemp("/tmp/tks-");
      runtime = new LocalRuntime({ dataDir: dir });
      server = await startServer({ host: "127.0.0.1", port: 0, dataDir: dir });
      token = (await readFile(server.adminTokenFile, "utf8")).trim();
    });

    after(async () => {
      // Whatever this test made, even by mistake, goes: every cluster the store knows.
      const all = await api("GET", "/v1/clusters").catch(() => ({ json: { items: [] } }));
      await server.close();
      for (const c of (all.json.items ?? []) as { id: string }[]) created.push(c.id);
      for (const id of created) await runtime.destroy(id).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    });

    it("refuses requests without a token (401) and bad input naming the field (400)", async () => {
      assert.equal((await api("GET", "/v1/clusters", undefined, false)).status, 401);
      const ttl = await api("POST", "/v1/clusters", { ttlMinutes: 0 });
      assert.equal(ttl.status, 400);
      assert.match(String(ttl.json.message), /ttlMinutes/);
      const unknown = await api("POST", "/v1/clusters", { colour: "blue" });
      assert.equal(unknown.status, 400);
      assert.match(String(unknown.json.message), /colour is not a known field/);
      const version = await api("POST", "/v1/clusters", { kubernetesVersion: "1.99" });
      assert.equal(version.status, 400);
      assert.match(String(version.json.message), /kubernetesVersion "1.99" is not offered/);
      assert.equal((await api("GET", "/v1/clusters/nosuch")).status, 404);
    });

    it("creates a cluster (wait), serves its kubeconfig, stops, starts and deletes it", async () => {
      const made = await api("POST", "/v1/clusters", { ttlMinutes: 30, size: "1-small", wait: true });
      assert.equal(made.status, 201, made.text);
      const id = String(made.json.id);
      created.push(id);
      assert.equal(made.json.phase, "running", made.text);
      assert.ok(Date.parse(String(made.json.expiresAt)) > Date.now() + 29 * 60_000);
      const kc = await api("GET", `/v1/clusters/${id}/kubeconfig`);
      assert.equal(kc.status, 200);
      const kubectl = await Kubectl.withKubeconfig(kc.text);
      assert.match(await kubectl.run(["get", "nodes"]), / Ready /);

      assert.equal(
        (await api("POST", `/v1/clusters/${id}/start`)).status,
        409,
        "starting a running cluster is a conflict",
      );
      assert.equal((await api("POST", `/v1/clusters/${id}/stop?wait=true`)).json.phase, "stopped");
      assert.equal((await runtime.status(id)).components.filter((c) => c.running).length, 0);
      assert.equal((await api("POST", `/v1/clusters/${id}/start?wait=true`)).json.phase, "running");
      assert.match(await kubectl.run(["get", "nodes"]), / Ready /);
      const extended = await api("POST", `/v1/clusters/${id}/extend`, { ttlMinutes: 120 });
      assert.ok(Date.parse(String(extended.json.expiresAt)) > Date.now() + 119 * 60_000);
      const listed = await api("GET", "/v1/clusters");
      assert.ok((listed.json.items as { id: string }[]).some((c) => c.id === id));
      assert.equal((await api("DELETE", `/v1/clusters/${id}?wait=true`)).json.phase, "terminated");
      const metrics = (await api("GET", "/metrics", undefined, false)).text;
      assert.match(metrics, /tempkube_cluster_create_seconds_count 1/);
      assert.match(metrics, /tempkube_clusters\{phase="terminated"\} 1/);
      assert.ok(!(await runtime.list()).includes(id));
    });

    it("serves the SMEK-style API: the docs' curl commands, commented body piped to sh", async () => {
      const work = await mkdtemp(join(tmpdir(), "tempkube-smek-"));
      const curl = (args: string) => `curl -sS -H "Authorization: Bearer ${token}" ${args}`;
      const create = `${curl(`-X POST ${server.url}/create -d '{
      // the Kubernetes version
      "k8s-version": "1.37",
      "minutes-to-live": 30,   // minutes
      "notification-email": "dev@example.com",
      "cluster-size": "1-small"
    }'`)} | sh -`;
      const { stdout } = await run("sh", ["-c", create], { cwd: work, timeoutMs: 300_000 });
      const id = /cluster (\w+) is ready/.exec(stdout)?.[1];
      assert.ok(id, stdout);
      created.push(id);
      const kubectl = await Kubectl.withKubeconfig(await readFile(join(work, `kubeconfig-${id}`), "utf8"));
      assert.match(await kubectl.run(["get", "nodes"]), / Ready /);

      const list = async () =>
        JSON.parse((await run("sh", ["-c", curl(`${server.url}/list`)])).stdout) as Record<string, string>[];
      assert.deepEqual((await list()).find((c) => c["cluster-id"] === id)?.["cluster-status"], "running");
      const stop = async (force: boolean) =>
        JSON.parse(
          (
            await run("sh", [
              "-c",
              curl(`-X POST ${server.url}/stop -d '{"cluster-id": "${id}", "force-terminate": ${force}}'`),
            ])
          ).stdout,
        ) as Record<string, string>;
      assert.equal((await stop(false))["cluster-status"], "stopped", "keep-cluster defaults to true: stop keeps it");
      const started = JSON.parse(
        (await run("sh", ["-c", curl(`-X POST ${server.url}/start -d '{"cluster-id": "${id}"}'`)])).stdout,
      ) as Record<string, string>;
      assert.equal(started["cluster-status"], "running");
      assert.equal((await stop(true))["cluster-status"], "terminated");
      const missing = await run("sh", ["-c", curl(`-X POST ${server.url}/create -d '{"k8s-version": "1.37"}'`)]);
      assert.match(missing.stdout, /notification-email is required/);
      await rm(work, { recursive: true, force: true });
    });
  },
);

describe(
  "warm pool, end to end",
  { timeout: 10 * 60_000, skip: unlessRoot("the warm pool boots real clusters") },
  () => {
    let runtime: LocalRuntime;
    let server: RunningServer;
    let dir: string;
    let token: string;
    let existing: string[] = [];

    before(async () => {
      dir = await mkdtemp("/tmp/tkp-");
      runtime = new LocalRuntime({ dataDir: dir });
      existing = await runtime.list();
      server = await startServer({ host: "127.0.0.1", port: 0, dataDir: dir, warmPool: 1 });
      token = (await readFile(server.adminTokenFile, "utf8")).trim();
    });
    after(async () => {
      await server.close();
      for (const id of await runtime.list())
        if (!existing.includes(id)) await runtime.destroy(id).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    });

    it("hands a booted cluster to a create at once: a real cluster, labelled with its id, with the user's lifetime", async () => {
      const deadline = Date.now() + 180_000;
      while (!(await server.store.clusters.all()).some((r) => r.pooled && r.phase === "running")) {
        assert.ok(Date.now() < deadline, "the pool booted a cluster");
        await new Promise((r) => setTimeout(r, 200));
      }
      const auth = { authorization: `Bearer ${token}` };
      const t = Date.now();
      const res = await fetch(`${server.url}/v1/clusters`, {
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        body: JSON.stringify({ ttlMinutes: 15 }),
      });
      const made = (await res.json()) as { id: string; phase: string; expiresAt: string };
      assert.equal(made.phase, "running", "usable in the create's answer");
      assert.ok(Date.now() - t < 5000);
      assert.ok(Math.abs(Date.parse(made.expiresAt) - (t + 15 * 60_000)) < 5000, "the lifetime counts from the claim");
      const kubectl = await Kubectl.withKubeconfig(
        await (await fetch(`${server.url}/v1/clusters/${made.id}/kubeconfig`, { headers: auth })).text(),
      );
      assert.match(await kubectl.run(["get", "nodes", "-l", `smek-cluster-id=${made.id}`]), / Ready /);
      assert.match(await kubectl.run(["config", "current-context"]), new RegExp(made.id));
      assert.match(await kubectl.run(["auth", "can-i", "create", "deployments"]), /yes/);
    });
  },
);
