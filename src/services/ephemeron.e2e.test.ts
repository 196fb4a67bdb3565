import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { nginxImage } from "../conformance/test-images.js";
import { systemClock } from "../core/clock.js";
import { newClusterId } from "../core/cluster-spec.js";
import { gatewayCaPath, GatewayPaths } from "../gateway/gateway-files.js";
import { ensureGateway, stopGateway } from "../gateway/gateway-process.js";
import { ClusterLayout, clustersDir } from "../runtime/local/layout.js";
import { LocalRuntime } from "../runtime/local/local-runtime.js";
import { CertificateAuthority } from "../runtime/local/pki.js";
import { busyboxBinary } from "../setup/artifact-paths.js";
import { DEFAULT_KUBERNETES_MINOR } from "../setup/catalogue.js";
import { writeImageArchive } from "../setup/image-archive.js";
import { Kubectl } from "../testing/kubectl.js";
import { OtherMachine } from "../testing/other-machine.js";
import { unlessRoot } from "../testing/root.js";
import { freePort } from "../util/net.js";
import type { EphemeronEvent } from "./ephemeron-controller.js";
import { EphemeronHub } from "./ephemeron-hub.js";
import { apiStatus, EphemeronKube } from "./ephemeron-kube.js";
import { httpRoutePath } from "./ephemeron-route.js";
import { ephemeronHost } from "./ephemeron-types.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const DOMAIN = "clusters.eph.test";
const PAGE = "hello-from-ephemeron";

/** The busybox image tempkube builds (src/setup/image-recipes.ts), serving a page with httpd. */
function ephemeron(name: string, expiresAt: number, extra: { image?: string; probe?: boolean } = {}): string {
  return JSON.stringify({
    apiVersion: "qualified.io/v1alpha1",
    kind: "Ephemeron",
    metadata: { name },
    spec: {
      expirationTime: new Date(expiresAt).toISOString(),
      service: {
        image: extra.image ?? "busybox:1.35",
        port: 8080,
        command: [
          "sh",
          "-c",
          `mkdir -p /www && echo ${PAGE}-${name} > /www/index.html && exec httpd -f -p 8080 -h /www`,
        ],
        ...(extra.probe === false ? {} : { readinessProbe: { path: "/index.html", periodSeconds: 1 } }),
      },
    },
  });
}

/**
 * Issue 14 on a real cluster: Ephemerons applied by the tenant become a Pod, a NodePort
 * Service and a gateway route; they serve through the gateway's HTTP port to another
 * machine, and are gone at their expiry (by timer, also across a controller restart).
 */
describe("Ephemerons in a tempkube cluster", { skip: unlessRoot("real clusters"), timeout: 9 * 60_000 }, () => {
  const id = `eph${newClusterId().slice(0, 6)}`;
  let dir = "";
  let other: OtherMachine;
  let kubectl: Kubectl;
  let hub: EphemeronHub;
  /** The cluster's admin, for reads that must be fast (timing expiry). */
  let admin: EphemeronKube;
  let httpPort = 0;
  let tlsPort = 0;
  const events: EphemeronEvent[] = [];
  const host = (name: string) => ephemeronHost(name, { clusterId: id, clusterDomain: DOMAIN });
  const routeFile = (name: string) => httpRoutePath(new GatewayPaths(dir), host(name));
  const runtime = () => new LocalRuntime({ dataDir: dir, clusterEgress: "none", clusterDomain: DOMAIN });
  const say = (o: object, m: string) => console.error(new Date().toISOString(), m, JSON.stringify(o));
  const quiet = { info: say, warn: say };
  const newHub = () => {
    const h = new EphemeronHub({
      dataDir: dir,
      gatewayHttp: { host: other.hostAddress, port: httpPort },
      clusterDomain: DOMAIN,
      servicesDomain: `services.${DOMAIN}`,
      servicesClusterId: () => undefined,
      clock: systemClock,
      log: quiet,
      rescanMs: 500,
    });
    h.onEvent((e) => events.push(e));
    return h;
  };

  const json = async (args: string[]) => JSON.parse(await kubectl.run([...args, "-o", "json"]));
  const exists = async (args: string[]) => (await kubectl.refusal(["get", ...args])) === undefined;
  const condition = async (name: string, type: string) => {
    const eph = await json(["get", "ephemeron", name]);
    return (eph.status?.conditions ?? []).find((c: { type: string }) => c.type === type);
  };
  const curl = async (name: string, path = "/") =>
    (
      await other.exec("curl", [
        "-sS",
        "--fail-with-body",
        "--max-time",
        "10",
        "--resolve",
        `${host(name)}:${httpPort}:${other.hostAddress}`,
        `http://${host(name)}:${httpPort}${path}`,
      ])
    ).stdout;

  /** Waits until every part of an Ephemeron is gone; returns when (epoch ms). */
  async function awaitGone(name: string, limitMs: number): Promise<number> {
    const deadline = Date.now() + limitMs;
    // Straight to the API (a few ms a read), not kubectl (its start-up alone is 0.2-1 s on a busy 2-core host).
    const present = (read: Promise<unknown>) =>
      read.then(
        () => true,
        (err: unknown) => {
          if (apiStatus(err) === 404) return false;
          throw err;
        },
      );
    for (;;) {
      // The time of asking: with reads of a few ms this is when it was gone (under heavy load a
      // read can take most of a second, which is the test's own delay, not the controller's).
      const asked = Date.now();
      const parts = await Promise.all([
        present(admin.readEphemeron(name)),
        present(admin.readPod(name)),
        present(admin.readService(name)),
      ]);
      const route = existsSync(routeFile(name));
      if (!parts.some(Boolean) && !route) return asked;
      if (Date.now() > deadline) assert.fail(`${name} not gone: ephemeron/pod/service ${parts}, route ${route}`);
      await sleep(50);
    }
  }

  before(async () => {
    dir = await mkdtemp("/tmp/tke-");
    other = await OtherMachine.create("eph", "198.51.101");
    httpPort = await freePort();
    await ensureGateway(dir, {
      listen: { host: other.hostAddress, port: (tlsPort = await freePort()) },
      httpListen: { host: other.hostAddress, port: httpPort },
      publicAddress: other.hostAddress,
      clusterDomain: DOMAIN,
    });
    await runtime().provision({
      id,
      kubernetesVersion: DEFAULT_KUBERNETES_MINOR,
      privileged: false,
      size: "1-small",
      workers: 0,
    });
    const tenant = await readFile(new ClusterLayout(id, clustersDir(dir)).kubeconfig("tenant"), "utf8");
    kubectl = await Kubectl.withKubeconfig(tenant);
    admin = new EphemeronKube(new ClusterLayout(id, clustersDir(dir)).kubeconfig("admin"));
    hub = newHub();
    await hub.start();
  });

  after(async () => {
    await hub?.stop();
    if (dir) {
      await runtime()
        .destroy(id)
        .catch(() => undefined);
      await stopGateway(dir).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
    await other?.remove();
  });

  it("the tenant applies one; it serves through the gateway to another machine, and says so once it does", async () => {
    assert.deepEqual(hub.clusters(), [id]);
    // The CRD is served, and the tenant's RBAC covers it (tools/cluster-controllers grants it per CRD).
    await waitUntil(
      async () => (await kubectl.refusal(["auth", "can-i", "create", "ephemerons.qualified.io"])) === undefined,
      30_000,
    );
    const t0 = Date.now();
    await kubectl.run(["apply", "-f", "-"], ephemeron("web", Date.now() + 10 * 60_000));
    const fresh = await json(["get", "eph", "web"]);
    assert.equal(fresh.metadata.annotations?.host, undefined, "no host before it serves");
    await kubectl.run(["wait", "ephemeron/web", "--for=condition=Available", "--timeout=90s"]);
    const servingMs = Date.now() - t0;
    const eph = await json(["get", "ephs", "web"]);
    assert.equal(eph.metadata.annotations.host, host("web"));
    assert.equal(eph.status.observedGeneration, eph.metadata.generation);
    assert.equal((await condition("web", "PodReady")).status, "True");
    assert.equal((await curl("web")).trim(), `${PAGE}-web`);
    const route = JSON.parse(await readFile(routeFile("web"), "utf8"));
    assert.equal(route.owner, `ephemeron/${id}/web`);
    assert.equal(route.clusterId, id);
    assert.equal(route.tls, "gateway");
    const pod = await json(["get", "pod", "web", "-n", "default"]);
    assert.equal(pod.metadata.ownerReferences[0].uid, eph.metadata.uid);
    assert.equal(pod.spec.containers[0].name, "container");
    assert.ok(events.some((e) => e.type === "available" && e.name === "web" && e.clusterId === id));
    const table = await kubectl.run(["get", "eph", "web"]);
    assert.match(table, /HOST\s+AVAILABLE\s+EXPIRES/);
    assert.match(table, new RegExp(`${host("web").replace(/\./g, "\\.")}\\s+True`));
    console.error(`create → Available (through the gateway): ${servingMs} ms`);

    // HTTPS on the gateway's TLS port: the gateway's own certificate for the name (tls: "gateway").
    assert.equal(
      (
        await other.exec("curl", [
          "-sS",
          "--fail-with-body",
          "--max-time",
          "10",
          "--cacert",
          gatewayCaPath(new GatewayPaths(dir)),
          "--resolve",
          `${host("web")}:${tlsPort}:${other.hostAddress}`,
          `https://${host("web")}:${tlsPort}/`,
        ])
      ).stdout.trim(),
      `${PAGE}-web`,
    );

    // Level-triggered: a deleted Pod comes back.
    await kubectl.run(["delete", "pod", "web", "-n", "default", "--wait=false"]);
    await waitUntil(async () => (await curl("web").catch(() => "")).trim() === `${PAGE}-web`, 60_000);
  });

  it("a manifest written for the reference (its k8s/example.yaml: image nginx, port 80) applies unchanged and serves nginx's page", async () => {
    // `image: nginx` is docker.io/library/nginx:latest, pulled (pull policy Always for latest)
    // from the host registry, which answers for every registry name: Debian's nginx, loaded
    // for every cluster as a user would with `tempkube load-image`.
    const archive = join(dir, "nginx.tar");
    await writeImageArchive(
      await nginxImage({
        reference: "docker.io/library/nginx:latest",
        busyboxBinary: busyboxBinary(),
        logFile: join(dir, "nginx-image.log"),
      }),
      archive,
    );
    assert.deepEqual((await runtime().loadImage(archive)).images, ["docker.io/library/nginx:latest"]);
    // The reference's example, with EXPIRES filled in as its test does with envsubst.
    const expires = new Date(Date.now() + 24 * 3600_000).toISOString().replace(/\.\d+Z$/, "+00:00");
    const example = [
      "kind: Ephemeron",
      "apiVersion: qualified.io/v1alpha1",
      "metadata:",
      '  name: "example"',
      "spec:",
      "  service:",
      '    image: "nginx"',
      "    port: 80",
      "    readinessProbe:",
      "      path: /",
      "  # Use `envsubst` to set `expirationTime`",
      `  expirationTime: "${expires}"`,
      "",
    ].join("\n");
    await kubectl.run(["apply", "-f", "-"], example);
    await kubectl.run(["wait", "ephemeron/example", "--for=condition=Available", "--timeout=90s"]);
    const served = (await json(["get", "eph", "example"])).metadata.annotations.host;
    assert.equal(served, host("example"));
    assert.match(await curl("example"), /<h1>Welcome to nginx!<\/h1>/);
    await kubectl.run(["delete", "eph", "example"]);
    await awaitGone("example", 30_000);
  });

  it("with tlsSecretName, HTTPS on the gateway's TLS port with the Secret's certificate; a certificate for another name is refused with the reason", async () => {
    const ca = await CertificateAuthority.create("ephemeron e2e");
    const good = await ca.issue({ commonName: host("secure"), dnsNames: [host("secure")], usage: "server" });
    const wrong = await ca.issue({ commonName: "other.example", dnsNames: ["other.example"], usage: "server" });
    const caFile = join(dir, "e2e-ca.crt");
    await writeFile(caFile, ca.cert.toString("pem"));
    for (const [name, pair] of [
      ["secure-tls", good],
      ["wrong-tls", wrong],
    ] as const) {
      await writeFile(join(dir, `${name}.crt`), pair.certPem);
      await writeFile(join(dir, `${name}.key`), pair.keyPem, { mode: 0o600 });
      await kubectl.run([
        "create",
        "secret",
        "tls",
        name,
        "-n",
        "default",
        `--cert=${join(dir, `${name}.crt`)}`,
        `--key=${join(dir, `${name}.key`)}`,
      ]);
    }
    const withSecret = (name: string, secret: string) => {
      const o = JSON.parse(ephemeron(name, Date.now() + 10 * 60_000));
      o.spec.service.tlsSecretName = secret;
      return JSON.stringify(o);
    };
    await kubectl.run(["apply", "-f", "-"], withSecret("secure", "secure-tls"));
    await kubectl.run(["apply", "-f", "-"], withSecret("wrong", "wrong-tls"));
    await kubectl.run(["wait", "ephemeron/secure", "--for=condition=Available", "--timeout=60s"]);
    const page = await other.exec("curl", [
      "-sS",
      "--fail-with-body",
      "--max-time",
      "10",
      "--cacert",
      caFile,
      "--resolve",
      `${host("secure")}:${tlsPort}:${other.hostAddress}`,
      `https://${host("secure")}:${tlsPort}/`,
    ]);
    assert.equal(page.stdout.trim(), `${PAGE}-secure`);
    await waitUntil(async () => (await condition("wrong", "Available"))?.reason === "TLSSecretInvalid", 30_000);
    assert.match((await condition("wrong", "Available")).message, /does not name/);
    assert.equal(existsSync(routeFile("wrong")), false);
  });

  it("a ServiceAccount the tenant binds to tempkube:ephemerons manages them; no other cluster-wide binding is allowed", async () => {
    await kubectl.run(["create", "serviceaccount", "ci", "-n", "default"]);
    await kubectl.run([
      "create",
      "clusterrolebinding",
      "ci-ephemerons",
      "--clusterrole=tempkube:ephemerons",
      "--serviceaccount=default:ci",
    ]);
    const refused = await kubectl.refusal([
      "create",
      "clusterrolebinding",
      "ci-admin",
      "--clusterrole=cluster-admin",
      "--serviceaccount=default:ci",
    ]);
    assert.match(refused ?? "", /forbidden|Forbidden|denied/);
    const ci = await Kubectl.withToken(kubectl, (await kubectl.run(["create", "token", "ci", "-n", "default"])).trim());
    await ci.run(["apply", "-f", "-"], ephemeron("from-ci", Date.now() + 10 * 60_000, { probe: false }));
    await ci.run(["get", "ephs"]);
    await ci.run([
      "patch",
      "eph",
      "from-ci",
      "--type=merge",
      "-p",
      JSON.stringify({ metadata: { labels: { by: "ci" } } }),
    ]);
    // The role gives Ephemerons, not what they are made of.
    assert.ok(await ci.refusal(["get", "pods", "-n", "default"]));
    await ci.run(["delete", "eph", "from-ci", "--wait=true", "--timeout=30s"]);
    await awaitGone("from-ci", 30_000);
    await kubectl.run(["delete", "clusterrolebinding", "ci-ephemerons"]);
  });

  it("is gone, pod, service, route and object, within 2 s of its expiry", async () => {
    const expiresAt = Date.now() + 20_000;
    await kubectl.run(["apply", "-f", "-"], ephemeron("short", expiresAt));
    await kubectl.run(["wait", "ephemeron/short", "--for=condition=Available", "--timeout=15s"]);
    assert.ok(existsSync(routeFile("short")));
    const gone = await awaitGone("short", expiresAt - Date.now() + 10_000);
    // The controller says so once its own deletes have answered, which can be after a reader
    // finds everything gone (seen: gone 53 ms after the expiry, the deletes answered in 233 ms).
    const expiredEvent = () => events.find((e) => e.type === "expired" && e.name === "short");
    for (const deadline = Date.now() + 5_000; !expiredEvent() && Date.now() < deadline;)
      await new Promise((r) => setTimeout(r, 20));
    const expired = expiredEvent();
    console.error(
      `expiry acted on ${expired ? expired.at - expiresAt : "?"} ms, all gone ${gone - expiresAt} ms after it`,
    );
    assert.ok(gone - expiresAt <= 2_000, `gone ${gone - expiresAt} ms after its expiry`);
    assert.ok(gone >= expiresAt - 200, "not before its expiry");
    assert.ok(expired, "an expired event");
    // The controller's own account: every delete answered (the event goes out after them).
    assert.ok(expired.at - expiresAt <= 2_000, `deleted ${expired.at - expiresAt} ms after its expiry`);
  });

  it("a changed expirationTime moves its timer", async () => {
    await kubectl.run(["apply", "-f", "-"], ephemeron("moved", Date.now() + 10 * 60_000, { probe: false }));
    const expiresAt = Date.now() + 8_000;
    await kubectl.run([
      "patch",
      "ephemeron",
      "moved",
      "--type=merge",
      "-p",
      JSON.stringify({ spec: { expirationTime: new Date(expiresAt).toISOString() } }),
    ]);
    const gone = await awaitGone("moved", 20_000);
    assert.ok(gone - expiresAt <= 2_000 && gone >= expiresAt - 200, `gone ${gone - expiresAt} ms after its new expiry`);
  });

  it("what expired while no controller ran is deleted when it starts again", async () => {
    const expiresAt = Date.now() + 6_000;
    await kubectl.run(["apply", "-f", "-"], ephemeron("across", expiresAt));
    await waitUntil(() => Promise.resolve(existsSync(routeFile("across"))), 30_000);
    await hub.stop();
    await sleep(expiresAt - Date.now() + 1_500);
    assert.ok(await exists(["ephemeron", "across"]), "no controller, no expiry");
    hub = newHub();
    const started = Date.now();
    await hub.start();
    const gone = await awaitGone("across", 10_000);
    console.error(`expired while down: gone ${gone - started} ms after the controller started`);
    // 2 s as for a running controller, plus its start (a kubeconfig, three lists; ~1 s on a loaded 2-core host).
    assert.ok(gone - started <= 3_000, `gone ${gone - started} ms after the controller started`);
  });

  it("a bad image says why it does not serve", async () => {
    await kubectl.run(
      ["apply", "-f", "-"],
      ephemeron("badimg", Date.now() + 10 * 60_000, { image: "registry.invalid/nope:1.0" }),
    );
    await waitUntil(async () => {
      const c = await condition("badimg", "PodReady");
      return ["ErrImagePull", "ImagePullBackOff"].includes(c?.reason);
    }, 90_000);
    const c = await condition("badimg", "PodReady");
    assert.equal(c.status, "False");
    assert.ok(c.message, "the kubelet's message is passed on");
    assert.equal((await condition("badimg", "Available")).status, "False");
  });

  it("a spec the controller cannot act on gets reason InvalidSpec, naming the field", async () => {
    const bad = JSON.parse(ephemeron("badspec", Date.now() + 10 * 60_000));
    bad.spec.service.podLabels = { "app.kubernetes.io/managed-by": "someone-else" };
    await kubectl.run(["apply", "-f", "-"], JSON.stringify(bad));
    await waitUntil(async () => (await condition("badspec", "Available"))?.reason === "InvalidSpec", 30_000);
    assert.match((await condition("badspec", "PodReady")).message, /spec\.service\.podLabels/);
    assert.equal(await exists(["pod", "badspec", "-n", "default"]), false);
    // An Ephemeron named after a Service it did not make never takes it over.
    await kubectl.run(["apply", "-f", "-"], ephemeron("kubernetes", Date.now() + 10 * 60_000));
    await waitUntil(async () => (await condition("kubernetes", "Available"))?.reason === "NameConflict", 30_000);
    const svc = await json(["get", "service", "kubernetes", "-n", "default"]);
    assert.equal(svc.spec.type, "ClusterIP");
    assert.equal(svc.metadata.ownerReferences, undefined);
  });
});

async function waitUntil(check: () => Promise<boolean>, limitMs: number): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) assert.fail("timed out waiting");
    await sleep(200);
  }
}
