import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { LocalRuntime } from "../runtime/local/local-runtime.js";
import { DEFAULT_KUBERNETES_MINOR } from "../setup/catalogue.js";
import { restCall } from "../testing/http.js";
import { Kubectl } from "../testing/kubectl.js";
import { unlessRoot } from "../testing/root.js";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { stopGateway } from "../gateway/gateway-process.js";
import { freePort } from "../util/net.js";
import { startServer, type RunningServer } from "./server.js";

/**
 * The services cluster of a real server on the local runtime: made at the first ensure (once for
 * callers at the same time), a working cluster, nobody's; found again, as it is, after a restart.
 */
describe(
  "services cluster, end to end",
  { timeout: 10 * 60_000, skip: unlessRoot("the server boots a real cluster") },
  () => {
    let dir: string;
    let runtime: LocalRuntime;
    let server: RunningServer | undefined;
    let existing: string[] = [];
    let gatewayPorts: number[] = [];
    let hook: Server;
    const received: Record<string, unknown>[] = [];
    const start = () =>
      startServer({
        host: "127.0.0.1",
        port: 0,
        dataDir: dir,
        warmPool: 0,
        servicesCluster: {
          kubernetesVersion: DEFAULT_KUBERNETES_MINOR,
          size: "1-small",
          workers: 0,
          privileged: false,
        },
        gateway: {
          listen: { host: "127.0.0.1", port: gatewayPorts[0]! },
          httpListen: { host: "127.0.0.1", port: gatewayPorts[1]! },
          clusterDomain: "clusters.svc.test",
        },
        notifications: { webhookUrl: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook` },
      });

    before(async () => {
      // Short: the kubelet's unix sockets live deep under the data dir, within 108 bytes.
      dir = await mkdtemp("/tmp/tkv-");
      runtime = new LocalRuntime({ dataDir: dir });
      existing = await runtime.list();
      gatewayPorts = [await freePort(), await freePort()];
      hook = createServer((req, res) => {
        let body = "";
        req.on("data", (c: Buffer) => (body += c.toString()));
        req.on("end", () => {
          received.push(JSON.parse(body) as Record<string, unknown>);
          res.end();
        });
      });
      await new Promise<void>((r) => hook.listen(0, "127.0.0.1", r));
    });
    after(async () => {
      await server?.close();
      await stopGateway(dir).catch(() => undefined);
      hook?.close();
      for (const id of await runtime.list())
        if (!existing.includes(id)) await runtime.destroy(id).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    });

    it("is made on first ensure, serves its admin, is no tenant's, and is found again after a restart", async () => {
      server = await start();
      assert.equal(server.servicesCluster?.clusterId(), undefined, "nothing made before the first use");
      assert.deepEqual(await runtime.list(), existing);
      const t = Date.now();
      const [a, b] = await Promise.all([server.servicesCluster!.ensure(), server.servicesCluster!.ensure()]);
      const firstMs = Date.now() - t;
      assert.equal(a.clusterId, b.clusterId);
      const id = a.clusterId;
      assert.deepEqual(
        (await runtime.list()).filter((c) => !existing.includes(c)),
        [id],
        "one cluster made",
      );
      const kubectl = await Kubectl.withKubeconfig(a.adminKubeconfig);
      assert.match(await kubectl.run(["get", "nodes"]), / Ready /);
      assert.match(await kubectl.run(["auth", "can-i", "create", "clusterroles"]), /yes/, "the admin's kubeconfig");

      // Its Ephemerons are served at <name>.<services domain> by the hub's controller, told to the webhook.
      await server.ephemeronHub!.scanNow();
      assert.ok(server.ephemeronHub!.clusters().includes(id), "a controller for the services cluster");
      const expiresAt = Date.now() + 25_000;
      await kubectl.run(
        ["apply", "-f", "-"],
        JSON.stringify({
          apiVersion: "qualified.io/v1alpha1",
          kind: "Ephemeron",
          metadata: { name: "web1" },
          spec: {
            expirationTime: new Date(expiresAt).toISOString(),
            service: {
              image: "busybox:1.35",
              port: 8080,
              command: ["sh", "-c", "mkdir -p /www && echo hi > /www/index.html && exec httpd -f -p 8080 -h /www"],
              readinessProbe: { path: "/index.html", periodSeconds: 1 },
            },
          },
        }),
      );
      const told = async (event: string, timeoutMs: number) => {
        const deadline = Date.now() + timeoutMs;
        while (!received.some((m) => m.event === event && m.service === "web1")) {
          assert.ok(Date.now() < deadline, `${event} told to the webhook; got ${JSON.stringify(received)}`);
          await new Promise((r) => setTimeout(r, 200));
        }
        return received.find((m) => m.event === event && m.service === "web1")!;
      };
      const available = await told("service-available", 90_000);
      assert.equal(available.host, `web1.${server.servicesDomain}`);
      assert.equal(available.clusterId, id);
      await told("service-expired", expiresAt - Date.now() + 15_000);
      const metrics = await server.metrics.registry.metrics();
      assert.match(metrics, /tempkube_services_available_total\{cluster="services"\} 1/);
      assert.match(metrics, /tempkube_services_expired_total\{cluster="services"\} 1/);

      const token = (await readFile(server.adminTokenFile, "utf8")).trim();
      const api = (t: string, method: string, path: string, body?: unknown) =>
        restCall(server!.url, t, method, path, body);
      const listed = (await api(token, "GET", "/v1/clusters")).json.items as { id: string; system?: string }[];
      assert.deepEqual(
        listed.map((c) => [c.id, c.system]),
        [[id, "services"]],
        "admins see it, marked",
      );
      const tenant = String((await api(token, "POST", "/v1/tokens", { name: "tenant", maxClusters: 1 })).json.token);
      assert.deepEqual((await api(tenant, "GET", "/v1/clusters")).json.items, [], "a tenant does not");
      assert.equal((await api(tenant, "GET", `/v1/clusters/${id}`)).status, 404);
      const deleted = await api(token, "DELETE", `/v1/clusters/${id}`);
      assert.equal(deleted.status, 409, deleted.text);
      assert.match(String(deleted.json.message), /server's services cluster/);

      await server.close();
      server = undefined;
      server = await start();
      assert.equal(server.servicesCluster?.clusterId(), id, "found in the store at start");
      const t2 = Date.now();
      const again = await server.servicesCluster!.ensure();
      const againMs = Date.now() - t2;
      assert.equal(again.clusterId, id);
      assert.deepEqual(
        (await runtime.list()).filter((c) => !existing.includes(c)),
        [id],
        "no second cluster",
      );
      assert.match(await kubectl.run(["get", "nodes"]), / Ready /, "the same cluster, still serving");
      console.log(`services cluster: first ensure ${firstMs} ms (cold create), after a restart ${againMs} ms`);
    });
  },
);
