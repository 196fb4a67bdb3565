import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { newClusterId } from "../core/cluster-spec.js";
import { gatewayCaPath, GatewayPaths } from "../gateway/gateway-files.js";
import { gatewayRunning, stopGateway } from "../gateway/gateway-process.js";
import { ClusterLayout, clustersDir } from "../runtime/local/layout.js";
import { LocalRuntime } from "../runtime/local/local-runtime.js";
import { DEFAULT_KUBERNETES_MINOR } from "../setup/catalogue.js";
import { BIN, tempkube } from "../testing/cli.js";
import { Kubectl } from "../testing/kubectl.js";
import { OtherMachine } from "../testing/other-machine.js";
import { unlessRoot } from "../testing/root.js";
import { freePort } from "../util/net.js";

const DOMAIN = "eph.far.test";

/**
 * `tempkube ephemeron controller` on a cluster tempkube does not run: the cluster here is a
 * tempkube cluster used only through its admin kubeconfig, as any cluster would be, with the
 * CRD removed first so that the command's own install is what serves it.
 */
describe(
  "tempkube ephemeron controller, on a cluster reached by kubeconfig",
  {
    skip: unlessRoot("real clusters"),
    timeout: 8 * 60_000,
  },
  () => {
    const id = `efc${newClusterId().slice(0, 6)}`;
    let dir = "";
    let other: OtherMachine;
    let admin: Kubectl;
    let adminKubeconfig = "";
    let controller: ChildProcess | undefined;
    let httpPort = 0;
    const fcDir = () => join(dir, "fc");
    const runtime = () => new LocalRuntime({ dataDir: dir, clusterEgress: "none" });

    before(async () => {
      dir = await mkdtemp("/tmp/tkf-");
      other = await OtherMachine.create("efc", "198.51.103");
      await runtime().provision({
        id,
        kubernetesVersion: DEFAULT_KUBERNETES_MINOR,
        privileged: false,
        size: "1-small",
        workers: 0,
      });
      adminKubeconfig = new ClusterLayout(id, clustersDir(dir)).kubeconfig("admin");
      admin = await Kubectl.withKubeconfig(await readFile(adminKubeconfig, "utf8"));
      await admin.run(["delete", "crd", "ephemerons.qualified.io", "--wait=true"]);
    });

    after(async () => {
      if (controller && controller.exitCode === null) controller.kill("SIGKILL");
      if (dir) {
        await stopGateway(fcDir()).catch(() => undefined);
        await runtime()
          .destroy(id)
          .catch(() => undefined);
        await rm(dir, { recursive: true, force: true });
      }
      await other?.remove();
    });

    it("installs the CRD, serves an Ephemeron through its own gateway to another machine, and stops cleanly", async () => {
      httpPort = await freePort();
      const tlsPort = await freePort();
      controller = spawn(
        BIN,
        [
          "ephemeron",
          "controller",
          "--kubeconfig",
          adminKubeconfig,
          "--domain",
          DOMAIN,
          "--listen",
          `${other.hostAddress}:${httpPort}`,
          "--tls-listen",
          String(tlsPort),
          "--data-dir",
          fcDir(),
        ],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      let stdout = "";
      let stderr = "";
      controller.stdout!.on("data", (c: Buffer) => (stdout += c.toString()));
      controller.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
      const exited = new Promise<number | null>((r) => controller!.once("exit", (code) => r(code)));
      const deadline = Date.now() + 90_000;
      while (!stdout.includes("serving the Ephemerons")) {
        if (controller.exitCode !== null || Date.now() > deadline)
          assert.fail(`the controller did not start (exit ${controller.exitCode}): ${stdout}\n${stderr.slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.match(stdout, new RegExp(`http://<name>\\.${DOMAIN.replace(/\./g, "\\.")}:${httpPort}`));

      await admin.run(
        ["apply", "-f", "-"],
        JSON.stringify({
          apiVersion: "qualified.io/v1alpha1",
          kind: "Ephemeron",
          metadata: { name: "web" },
          spec: {
            expirationTime: new Date(Date.now() + 10 * 60_000).toISOString(),
            service: {
              image: "busybox:1.35",
              port: 8080,
              command: [
                "sh",
                "-c",
                "mkdir -p /www && echo from-afar > /www/index.html && exec httpd -f -p 8080 -h /www",
              ],
              readinessProbe: { path: "/index.html", periodSeconds: 1 },
            },
          },
        }),
      );
      await admin.run(["wait", "ephemeron/web", "--for=condition=Available", "--timeout=90s"]);
      const eph = JSON.parse(await admin.run(["get", "eph", "web", "-o", "json"]));
      assert.equal(eph.metadata.annotations.host, `web.${DOMAIN}`);
      /** web's page from the other machine, through the controller's gateway on `port`. */
      const pageOf = async (scheme: "http" | "https", port: number, extra: string[] = []) =>
        (
          await other.exec("curl", [
            "-sS",
            "--fail-with-body",
            "--max-time",
            "10",
            ...extra,
            "--resolve",
            `web.${DOMAIN}:${port}:${other.hostAddress}`,
            `${scheme}://web.${DOMAIN}:${port}/`,
          ])
        ).stdout.trim();
      assert.equal(await pageOf("http", httpPort), "from-afar");
      // HTTPS on its TLS port, with a certificate from its own CA, which vouches for this domain only.
      assert.equal(await pageOf("https", tlsPort, ["--cacert", gatewayCaPath(new GatewayPaths(fcDir()))]), "from-afar");
      // The role tenants bind is installed with the CRD.
      await admin.run(["get", "clusterrole", "tempkube:ephemerons"]);

      // One controller per data dir: a second one says which process has it.
      const second = await tempkube([
        "ephemeron",
        "controller",
        "--kubeconfig",
        adminKubeconfig,
        "--domain",
        DOMAIN,
        "--data-dir",
        fcDir(),
      ]);
      assert.notEqual(second.code, 0);
      assert.match(second.stderr, new RegExp(`another tempkube ephemeron controller \\(pid ${controller.pid}\\)`));

      controller.kill("SIGTERM");
      assert.equal(await exited, 0, stderr.slice(-2000));
      assert.equal(await gatewayRunning(fcDir()), false, "its gateway stops with it");
      // The Ephemeron itself stays: a later start serves it again (or deletes it, once expired).
      await admin.run(["get", "eph", "web"]);
    });
  },
);
