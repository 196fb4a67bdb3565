import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createServer, type Server } from "node:http";
import { after, before, describe, it } from "node:test";
import { unlessRoot } from "../../testing/root.js";
import { newClusterId } from "../../core/cluster-spec.js";
import { Kubectl } from "../../testing/kubectl.js";
import { imageArchive } from "../../setup/artifact-paths.js";
import { run, spawnTiedToParent, succeeds } from "../../util/exec.js";
import { REGISTRY_ADDRESS, REGISTRY_PORT } from "./host-registry.js";
import type { LocalClusterState } from "./cluster-state.js";
import { HostInspection } from "./host-inspection.js";
import { ClusterLayout } from "./layout.js";
import { waitFor } from "./wait.js";
import { LocalRuntime } from "./local-runtime.js";
import { CertificateAuthority } from "./pki.js";
import { DEFAULT_KUBERNETES_MINOR } from "../../setup/catalogue.js";

/**
 * End to end, with real clusters of two tempkube instances (two data dirs) on this host at
 * once: neither reaches the host's own services (only the registry), nor the other; the one
 * with egress `internet` reaches "the internet" (a network namespace this test makes,
 * joined to the host by a veth, on TEST-NET-3) and pulls from a registry there, and the one
 * with `none` does not; neither reaches link-local addresses; destroying one leaves the
 * other whole.
 */
const OUTSIDE_NETNS = "tkt-outside";
const OUTSIDE_VETH = "tktout0";
const OUTSIDE_HOST_IP = "203.0.113.1";
const OUTSIDE_IP = "203.0.113.10";
const METADATA_IP = "169.254.169.254";
const OUTSIDE_PORT = 8080;
/** A registry "on the internet" (docker-registry over TLS, in the outside namespace). */
const OUTSIDE_REGISTRY = `${OUTSIDE_IP}:8443`;

const PROBE = `
apiVersion: v1
kind: Pod
metadata: { name: probe }
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - { name: c, image: busybox:1.35, command: [sh, -c, "mkdir -p /w && echo probe > /w/index.html && httpd -p 8080 -h /w && exec sleep 3600"] }
`;

/** What a connection attempt from a node's network namespace came to: "connected", or the error code. */
async function connectFromNode(netnsPath: string, host: string, port: number): Promise<string> {
  const script = `const s = require("node:net").connect({ host: ${JSON.stringify(host)}, port: ${port} });
s.setTimeout(3000, () => { console.log("TIMEOUT"); process.exit(0); });
s.on("connect", () => { console.log("connected"); process.exit(0); });
s.on("error", (e) => { console.log(e.code); process.exit(0); });`;
  const { stdout } = await run("nsenter", [`--net=${netnsPath}`, process.execPath, "-e", script]);
  return stdout.trim();
}

/**
 * IPv6 on or off in a node's namespace, as a tenant's host-network pod with NET_ADMIN
 * could set it; on, without duplicate address detection, so the link-local address is
 * usable at once, and only once it is there.
 */
async function setNodeIpv6(netnsPath: string, on: boolean): Promise<void> {
  const sysctl = (key: string, value: string) =>
    run("nsenter", [`--net=${netnsPath}`, "sysctl", "-qw", `net.ipv6.conf.${key}=${value}`]);
  if (on) await sysctl("all.accept_dad", "0");
  if (on) await sysctl("eth0.accept_dad", "0");
  await sysctl("all.disable_ipv6", on ? "0" : "1");
  if (!on) return;
  await waitFor(
    `an IPv6 link-local address on eth0 in ${netnsPath}`,
    async () => {
      const { stdout } = await run("nsenter", [`--net=${netnsPath}`, "ip", "-6", "-o", "addr", "show", "dev", "eth0"]);
      return /inet6 fe80::/.test(stdout) && !stdout.includes("tentative");
    },
    5_000,
  );
}

/** A pod's wget of the URL: its body, or the error text. */
async function wgetFromPod(k: Kubectl, url: string): Promise<{ body?: string; error?: string }> {
  try {
    return { body: (await k.run(["exec", "probe", "--", "timeout", "5", "wget", "-qO-", url])).trim() };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

async function taggedRules(id: string): Promise<string[]> {
  const lines: string[] = [];
  for (const cmd of ["iptables-save", "ip6tables-save"]) {
    lines.push(...(await run(cmd, [])).stdout.split("\n").filter((l) => l.includes(`"tempkube:${id}"`)));
  }
  return lines;
}

describe("host isolation, two instances, egress", { skip: unlessRoot("real clusters"), timeout: 20 * 60_000 }, () => {
  const dirs: string[] = [];
  let internetRuntime: LocalRuntime;
  let noneRuntime: LocalRuntime;
  const open = `hi${newClusterId().slice(0, 6)}`;
  const closed = `hi${newClusterId().slice(0, 6)}`;
  const states = new Map<string, LocalClusterState>();
  const kubectl = new Map<string, Kubectl>();
  let hostListener: Server;
  let hostPort: number;
  let outside: ChildProcess | undefined;
  let outsideRegistry: ChildProcess | undefined;

  before(async () => {
    // Short paths: the kubelet's unix sockets live deep under the data dir, within 108 bytes.
    for (let i = 0; i < 2; i++) dirs.push(await mkdtemp("/tmp/tk-"));
    internetRuntime = new LocalRuntime({ dataDir: dirs[0], clusterEgress: "internet" });
    noneRuntime = new LocalRuntime({ dataDir: dirs[1], clusterEgress: "none" });

    // A service of the host's own, on every address (IPv4 and IPv6).
    hostListener = createServer((_req, res) => res.end("host-secret"));
    await new Promise<void>((resolve) => hostListener.listen(0, "::", resolve));
    hostPort = (hostListener.address() as { port: number }).port;

    // "The internet": a namespace of this test's, routed from the host, with an HTTP server
    // that answers on its own address and on the metadata address.
    await succeeds("ip", ["netns", "del", OUTSIDE_NETNS]);
    await run("ip", ["netns", "add", OUTSIDE_NETNS]);
    await run("ip", ["link", "add", OUTSIDE_VETH, "type", "veth", "peer", "name", "eth0", "netns", OUTSIDE_NETNS]);
    await run("ip", ["addr", "add", `${OUTSIDE_HOST_IP}/24`, "dev", OUTSIDE_VETH]);
    await run("ip", ["link", "set", OUTSIDE_VETH, "up"]);
    await run("ip", ["route", "replace", `${METADATA_IP}/32`, "dev", OUTSIDE_VETH]);
    await run("ip", ["-n", OUTSIDE_NETNS, "addr", "add", `${OUTSIDE_IP}/24`, "dev", "eth0"]);
    await run("ip", ["-n", OUTSIDE_NETNS, "addr", "add", `${METADATA_IP}/32`, "dev", "eth0"]);
    await run("ip", ["-n", OUTSIDE_NETNS, "link", "set", "eth0", "up"]);
    await run("ip", ["-n", OUTSIDE_NETNS, "link", "set", "lo", "up"]);
    await run("ip", ["-n", OUTSIDE_NETNS, "route", "add", "default", "via", OUTSIDE_HOST_IP]);
    const server = `require("node:http").createServer((q, r) => r.end("outside-hello from-" + q.socket.remoteAddress)).listen(${OUTSIDE_PORT}, "0.0.0.0")`;
    outside = spawn("nsenter", [`--net=/run/netns/${OUTSIDE_NETNS}`, process.execPath, "-e", server], {
      stdio: "ignore",
    });

    // Two instances create clusters at the same time.
    // Both settle before anything is judged, so that after() never races a boot still under way.
    const settled = await Promise.allSettled([
      internetRuntime.provision({
        id: open,
        kubernetesVersion: DEFAULT_KUBERNETES_MINOR,
        privileged: false,
        size: "1-small",
        workers: 0,
      }),
      noneRuntime.provision({
        id: closed,
        kubernetesVersion: DEFAULT_KUBERNETES_MINOR,
        privileged: false,
        size: "1-small",
        workers: 0,
      }),
    ]);
    const made = settled.map((s) => {
      if (s.status === "rejected") throw s.reason;
      return s.value;
    });
    states.set(open, await internetRuntime.readState(open));
    states.set(closed, await noneRuntime.readState(closed));
    kubectl.set(open, await Kubectl.withKubeconfig(made[0].credentials.tenantKubeconfig));
    kubectl.set(closed, await Kubectl.withKubeconfig(made[1].credentials.tenantKubeconfig));
    for (const k of kubectl.values()) await k.run(["apply", "-f", "-"], PROBE);
    for (const k of kubectl.values()) await k.run(["wait", "--for=condition=Ready", "pod/probe", "--timeout=120s"]);
  });

  after(async () => {
    await internetRuntime?.destroy(open).catch(() => undefined);
    await noneRuntime?.destroy(closed).catch(() => undefined);
    outside?.kill("SIGTERM");
    outsideRegistry?.kill("SIGTERM");
    await succeeds("ip", ["netns", "del", OUTSIDE_NETNS]);
    await succeeds("ip", ["link", "del", OUTSIDE_VETH]);
    await succeeds("ip", ["route", "del", `${METADATA_IP}/32`, "dev", OUTSIDE_VETH]);
    await new Promise((resolve) => hostListener?.close(resolve));
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it("gives the two instances different address ranges, and each a working cluster", () => {
    const [a, b] = [states.get(open)!.network, states.get(closed)!.network];
    assert.notEqual(a.index, b.index);
    assert.equal(a.egress, "internet");
    assert.equal(b.egress, "none");
  });

  it("refuses the host's own services to pods and to node namespaces, every host address alike", async () => {
    // The listener works: a refusal below is the firewall's doing.
    assert.equal(await fetch(`http://127.0.0.1:${hostPort}/`).then((r) => r.text()), "host-secret");
    const { stdout: hostAddrs } = await run("ip", ["-4", "-o", "addr", "show", "scope", "global"]);
    const eth = [...hostAddrs.matchAll(/inet (\d+\.\d+\.\d+\.\d+)\//g)]
      .map((m) => m[1])
      .find((a) => !a.startsWith("172.30.") && a !== OUTSIDE_HOST_IP);
    for (const id of [open, closed]) {
      const net = states.get(id)!.network;
      const targets = [net.gateway, REGISTRY_ADDRESS, ...(eth ? [eth] : [])];
      for (const host of targets) {
        const got = await wgetFromPod(kubectl.get(id)!, `http://${host}:${hostPort}/`);
        assert.equal(got.body, undefined, `a pod of ${id} reached the host's service at ${host}`);
        assert.match(got.error ?? "", /Connection refused/, `refused at once, from a pod of ${id} to ${host}`);
        assert.equal(
          await connectFromNode(net.nodes[0].netnsPath, host, hostPort),
          "ECONNREFUSED",
          `node namespace of ${id} to ${host}`,
        );
      }
      // IPv6: the bridge's link-local address is the host too. A node's namespace has no
      // IPv6 (network.ts nodeSysctls), so it cannot even address the host that way.
      const { stdout: v6 } = await run("ip", ["-6", "-o", "addr", "show", "dev", net.bridge, "scope", "link"]);
      const linkLocal = /inet6 (fe80::[0-9a-f:]+)\//.exec(v6)?.[1];
      assert.ok(linkLocal, `the bridge ${net.bridge} has a link-local address`);
      const nodeNetns = net.nodes[0].netnsPath;
      assert.equal(await connectFromNode(nodeNetns, `${linkLocal}%eth0`, hostPort), "EADDRNOTAVAIL", `IPv6 from ${id}`);
      // A host-network pod with NET_ADMIN (a privileged cluster's tenant) can turn IPv6 back
      // on in its node's namespace: the host's IPv6 firewall must still refuse it.
      await setNodeIpv6(nodeNetns, true);
      try {
        assert.equal(
          await connectFromNode(nodeNetns, `${linkLocal}%eth0`, hostPort),
          "ECONNREFUSED",
          `IPv6 from ${id}, turned back on in its node's namespace`,
        );
      } finally {
        await setNodeIpv6(nodeNetns, false);
      }
    }
  });

  it("lets pods and nodes pull from the registry", async () => {
    for (const id of [open, closed]) {
      const got = await wgetFromPod(kubectl.get(id)!, `http://${REGISTRY_ADDRESS}:${REGISTRY_PORT}/v2/`);
      assert.equal(got.body, "{}", `${id}: ${got.error}`);
      assert.equal(
        await connectFromNode(states.get(id)!.network.nodes[0].netnsPath, REGISTRY_ADDRESS, REGISTRY_PORT),
        "connected",
      );
    }
  });

  it("keeps the two clusters apart: nodes and pods, whichever has egress", async () => {
    for (const [from, to] of [
      [open, closed],
      [closed, open],
    ]) {
      const node = states.get(to)!.network.nodes[0].ip;
      const pod = (await kubectl.get(to)!.run(["get", "pod", "probe", "-o", "jsonpath={.status.podIP}"])).trim();
      assert.equal(
        (await wgetFromPod(kubectl.get(to)!, `http://${pod}:8080/`)).body,
        "probe",
        "the probe serves in its own cluster",
      );
      // Plain HTTP to the TLS port answers 400: any HTTP status line means a connection was made.
      for (const url of [`http://${node}:6443/`, `http://${pod}:8080/`]) {
        const got = await wgetFromPod(kubectl.get(from)!, url);
        assert.equal(got.body, undefined, `${from} reached ${to} at ${url}`);
        assert.doesNotMatch(
          got.error ?? "",
          /HTTP\/1\.[01] \d{3}/,
          `${from} got an answer from ${url} (${to}'s, or, leaked out by the default route, someone else's)`,
        );
      }
      assert.notEqual(await connectFromNode(states.get(from)!.network.nodes[0].netnsPath, node, 6443), "connected");
    }
  });

  it("lets the cluster with egress internet out (masqueraded), and not the one with none", async () => {
    const reached = await wgetFromPod(kubectl.get(open)!, `http://${OUTSIDE_IP}:${OUTSIDE_PORT}/`);
    assert.equal(reached.body, `outside-hello from-${OUTSIDE_HOST_IP}`, `egress internet: ${reached.error}`);
    const blocked = await wgetFromPod(kubectl.get(closed)!, `http://${OUTSIDE_IP}:${OUTSIDE_PORT}/`);
    assert.equal(blocked.body, undefined, "egress none reached the outside");
    assert.equal(
      await connectFromNode(states.get(closed)!.network.nodes[0].netnsPath, OUTSIDE_IP, OUTSIDE_PORT),
      "TIMEOUT",
    );
  });

  it("looks an image the host registry lacks up at the registry it names with egress internet, and nowhere else with none", async () => {
    // The outside server speaks plain HTTP, so a pull that gets there fails with Go's
    // "server gave HTTP response to HTTPS client": proof that containerd went past the mirror.
    // containerd 1.6 puts that error in the pod's event; containerd 2 reports the "most
    // relevant" error of all hosts tried (the host registry's 404: "not found",
    // core/remotes/docker/resolver.go) and logs each host's failure ("trying next host",
    // "fetch failed", with the URL), so the node's containerd log is read too.
    const image = `${OUTSIDE_IP}:${OUTSIDE_PORT}/probe/missing:1`;
    const containerdLog = async (id: string, dataDir: string) => {
      const layout = new ClusterLayout(id, join(dataDir, "clusters"));
      const node = states.get(id)!.network.nodes[0].name;
      return readFile(join(layout.logDir, `containerd-${node}.log`), "utf8").catch(() => "");
    };
    const pullFailure = async (k: Kubectl) => {
      await k.run(["run", "pull", `--image=${image}`, "--restart=Never"]);
      let message = "";
      for (let i = 0; i < 120 && !/Failed to pull/.test(message); i++) {
        message = await k.run([
          "get",
          "events",
          "--field-selector",
          "involvedObject.name=pull",
          "-o",
          "jsonpath={range .items[*]}{.message}{'\\n'}{end}",
        ]);
        if (!/Failed to pull/.test(message)) await new Promise((r) => setTimeout(r, 500));
      }
      await k.run(["delete", "pod", "pull", "--wait=false"]);
      return message;
    };
    const open_ = `${await pullFailure(kubectl.get(open)!)}\n${await containerdLog(open, dirs[0])}`;
    assert.match(
      open_,
      new RegExp(`https://${OUTSIDE_IP}:${OUTSIDE_PORT}/v2/probe/missing/manifests/1.*HTTP response to HTTPS client`),
    );
    const closedEvents = await pullFailure(kubectl.get(closed)!);
    assert.match(closedEvents, /Failed to pull/);
    const closed_ = `${closedEvents}\n${await containerdLog(closed, dirs[1])}`;
    assert.doesNotMatch(
      closed_,
      new RegExp(`https://${OUTSIDE_IP}`),
      "with egress none only the host registry is asked",
    );
  });

  it("pulls an image the host registry lacks from a registry outside, with egress internet", async () => {
    // The outside registry serves TLS with a certificate of the test's own CA, which the
    // node's containerd is told to trust for that registry alone (hosts.toml, as a user does
    // for a private registry): the host registry first, as in _default, then the real one.
    const dir = await mkdtemp("/tmp/tk-outside-registry-");
    dirs.push(dir);
    const ca = await CertificateAuthority.create("tempkube-test-outside-ca");
    const serving = await ca.issue({ commonName: OUTSIDE_IP, usage: "server", ipAddresses: [OUTSIDE_IP] });
    await mkdir(join(dir, "certs"));
    await writeFile(join(dir, "certs", "ca.crt"), ca.certPem);
    await writeFile(join(dir, "tls.crt"), serving.certPem);
    await writeFile(join(dir, "tls.key"), serving.keyPem);
    await writeFile(
      join(dir, "registry.yaml"),
      `version: 0.1
log: { level: warn }
storage: { filesystem: { rootdirectory: ${dir}/storage } }
http:
  addr: ${OUTSIDE_REGISTRY}
  tls: { certificate: ${dir}/tls.crt, key: ${dir}/tls.key }
`,
    );
    outsideRegistry = spawnTiedToParent(
      "nsenter",
      [`--net=/run/netns/${OUTSIDE_NETNS}`, "/usr/bin/docker-registry", "serve", `${dir}/registry.yaml`],
      { stdio: "ignore" },
    );
    const image = `${OUTSIDE_REGISTRY}/outside/busybox:1`;
    let pushed = false;
    for (let i = 0; i < 50 && !pushed; i++) {
      pushed = await succeeds("skopeo", [
        "copy",
        "--dest-cert-dir",
        join(dir, "certs"),
        `docker-archive:${imageArchive("busybox")}`,
        `docker://${image}`,
      ]);
      if (!pushed) await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(pushed, "the image is in the outside registry");
    const state = states.get(open)!;
    for (const node of state.network.nodes) {
      const hosts = join(
        new ClusterLayout(open, join(dirs[0], "clusters")).node(node.name).registryHostsDir,
        OUTSIDE_REGISTRY,
      );
      await mkdir(hosts, { recursive: true });
      await writeFile(
        join(hosts, "hosts.toml"),
        `server = "https://${OUTSIDE_REGISTRY}"
ca = "${join(dir, "certs", "ca.crt")}"

[host."http://${REGISTRY_ADDRESS}:${REGISTRY_PORT}"]
  capabilities = ["pull", "resolve"]
`,
      );
    }
    const k = kubectl.get(open)!;
    await k.run(["run", "pulled", `--image=${image}`, "--restart=Never", "--command", "--", "sleep", "3600"]);
    await k.run(["wait", "--for=condition=Ready", "pod/pulled", "--timeout=120s"]);
    assert.equal((await k.run(["exec", "pulled", "--", "echo", "from-outside"])).trim(), "from-outside");
    await k.run(["delete", "pod", "pulled", "--wait=false"]);
  });

  it("never lets a cluster reach link-local (metadata) addresses, which the host itself reaches", async () => {
    assert.match(await fetch(`http://${METADATA_IP}:${OUTSIDE_PORT}/`).then((r) => r.text()), /^outside-hello/);
    for (const id of [open, closed]) {
      const got = await wgetFromPod(kubectl.get(id)!, `http://${METADATA_IP}:${OUTSIDE_PORT}/`);
      assert.equal(got.body, undefined, `${id} reached ${METADATA_IP}`);
    }
  });

  it("makes an id another instance's live cluster holds unusable, without touching that cluster", async () => {
    const rulesBefore = await taggedRules(closed);
    await assert.rejects(
      internetRuntime.provision({
        id: closed,
        kubernetesVersion: DEFAULT_KUBERNETES_MINOR,
        privileged: false,
        size: "1-small",
        workers: 0,
      }),
      /in use on this host by the tempkube instance with data dir/,
    );
    assert.deepEqual(await taggedRules(closed), rulesBefore);
    assert.equal(
      (await noneRuntime.status(closed)).components.every((c) => c.running),
      true,
    );
    await kubectl.get(closed)!.run(["exec", "probe", "--", "true"]);
  });

  it("destroying one instance's cluster leaves the other's links, rules and pods", async () => {
    const other = states.get(closed)!.network;
    const rulesBefore = await taggedRules(closed);
    assert.ok(rulesBefore.length > 0);
    await internetRuntime.destroy(open);
    assert.deepEqual(await new HostInspection(dirs[0]).leftovers(open, states.get(open)!.network), []);
    assert.deepEqual(await taggedRules(closed), rulesBefore, "the other cluster's rules");
    for (const link of [other.bridge, ...other.nodes.map((n) => n.hostVeth)])
      assert.ok(await succeeds("ip", ["link", "show", link]), `link ${link}`);
    await kubectl.get(closed)!.run(["exec", "probe", "--", "true"]);
    const dns = await kubectl
      .get(closed)!
      .run(["exec", "probe", "--", "nslookup", "kubernetes.default.svc.cluster.local"]);
    assert.match(dns, /10\.96\.0\.1/);
    await noneRuntime.destroy(closed);
    assert.deepEqual(await new HostInspection(dirs[1]).leftovers(closed, other), []);
  });
});
