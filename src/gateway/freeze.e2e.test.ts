import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { compressedSwap } from "../host/compressed-swap.js";
import { clusterCgroup, cpuSeconds, isCgroupV2, leftoverCgroups } from "../runtime/local/cgroups.js";
import { LocalRuntime } from "../runtime/local/local-runtime.js";
import { startServer, type RunningServer } from "../server/server.js";
import { defaultRelease } from "../setup/catalogue.js";
import { kubernetesBinary } from "../setup/installer.js";
import { restCall } from "../testing/http.js";
import { OtherMachine } from "../testing/other-machine.js";
import { unlessRoot } from "../testing/root.js";
import { freePort } from "../util/net.js";
import { stopGateway } from "./gateway-process.js";

const execFileAsync = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const FREEZE_AFTER_MS = 5000;

const BUSY = `
apiVersion: apps/v1
kind: Deployment
metadata: { name: busy }
spec:
  replicas: 1
  selector: { matchLabels: { app: busy } }
  template:
    metadata: { labels: { app: busy } }
    spec:
      terminationGracePeriodSeconds: 0
      containers: [{ name: busy, image: "busybox:1.35", command: [sleep, "100000"] }]
`;

/** A pod with a 64 MiB limit that holds 300 MB (tail keeps all of a newline-less input). */
const HOG = `
apiVersion: v1
kind: Pod
metadata: { name: hog }
spec:
  restartPolicy: Never
  containers:
    - name: hog
      image: "busybox:1.35"
      command: [sh, -c, "head -c 300m /dev/zero | tail; echo survived"]
      resources: { limits: { memory: 64Mi } }
`;

/** cgroup v1 memory.stat's hierarchical totals of the cluster's cgroup, in MiB. */
async function memoryStat(id: string): Promise<{ rss: number; cache: number; swap: number }> {
  const stat = await readFile(join("/sys/fs/cgroup/memory", clusterCgroup(id), "memory.stat"), "utf8");
  const mib = (k: string) => Number(new RegExp(`^total_${k} (\\d+)$`, "m").exec(stat)?.[1]) / 2 ** 20;
  return { rss: mib("rss"), cache: mib("cache"), swap: mib("swap") };
}

/** The cgroup v1 files that keep a running cluster out of swap (cgroups.ts keepFromSwap, setMemoryLimit). */
async function swapGuards(id: string): Promise<{ swappiness: string[]; limit: string; memsw: string }> {
  const dir = join("/sys/fs/cgroup/memory", clusterCgroup(id));
  const read = (f: string) => readFile(join(dir, f), "utf8").then((t) => t.trim());
  const { stdout } = await execFileAsync("find", [dir, "-name", "memory.swappiness", "-exec", "cat", "{}", "+"]);
  return {
    swappiness: [...new Set(stdout.trim().split("\n"))],
    limit: await read("memory.limit_in_bytes"),
    memsw: await read("memory.memsw.limit_in_bytes"),
  };
}

interface Condition {
  type: string;
  status: string;
  lastTransitionTime: string;
  reason?: string;
  message?: string;
}

/** The last lines of the cluster's kubelet and containerd logs that report an error, for a failure's message. */
async function runtimeErrorLines(dir: string, id: string): Promise<string> {
  const logs = join(dir, "clusters", id, "logs");
  const names = (await readdir(logs).catch(() => [] as string[])).filter((n) => /^(kubelet|containerd)-/.test(n));
  const parts = await Promise.all(
    names.map(async (n) => {
      const lines = (await readFile(join(logs, n), "utf8").catch(() => "")).split("\n");
      const errors = lines.filter((l) => /^E\d{4} |level=error|runtime|sanity/i.test(l)).slice(-12);
      return `--- ${n}\n${errors.map((l) => l.slice(0, 400)).join("\n")}`;
    }),
  );
  return parts.join("\n");
}

const until = async (what: string, check: () => Promise<boolean>, timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `timed out: ${what}`);
    await sleep(500);
  }
};

/**
 * A tempkube server freezing after FREEZE_AFTER_MS, its gateway on the address a network
 * namespace of the test's ("another machine") reaches; close() removes all it made.
 */
class FreezingServer {
  private constructor(
    readonly dir: string,
    readonly runtime: LocalRuntime,
    private readonly existing: string[],
    readonly other: OtherMachine,
    readonly server: RunningServer,
    private readonly admin: string,
  ) {}

  static async start(name: string, subnet: string, hostCapacity?: number): Promise<FreezingServer> {
    const dir = await mkdtemp("/tmp/tkf-");
    const runtime = new LocalRuntime({ dataDir: dir });
    const existing = await runtime.list();
    const other = await OtherMachine.create(name, subnet);
    const server = await startServer({
      host: "127.0.0.1",
      port: 0,
      dataDir: dir,
      warmPool: 0,
      hostCapacity,
      freezeAfterMs: FREEZE_AFTER_MS,
      gateway: {
        listen: { host: other.hostAddress, port: await freePort() },
        httpListen: { host: other.hostAddress, port: await freePort() },
        publicAddress: other.hostAddress,
        clusterDomain: `clusters.${name}.test`,
      },
    });
    const admin = (await readFile(server.adminTokenFile, "utf8")).trim();
    return new FreezingServer(dir, runtime, existing, other, server, admin);
  }

  api(method: string, path: string, body?: unknown) {
    return restCall(this.server.url, this.admin, method, path, body);
  }

  async cluster(id: string) {
    return (await this.api("GET", `/v1/clusters/${id}`)).json;
  }

  /** A running 1-small cluster, and the path of its kubeconfig (through the gateway). */
  async create(): Promise<{ id: string; kubeconfig: string }> {
    const made = await this.api("POST", "/v1/clusters", { ttlMinutes: 20, size: "1-small", wait: true });
    assert.equal(made.status, 201, made.text);
    assert.equal(made.json.phase, "running", made.text);
    const id = String(made.json.id);
    const kubeconfig = join(this.dir, `kubeconfig-${id}`);
    await writeFile(kubeconfig, (await this.api("GET", `/v1/clusters/${id}/kubeconfig`)).text, { mode: 0o600 });
    return { id, kubeconfig };
  }

  /** kubectl on the other machine. */
  async kubectl(kubeconfig: string, args: string[], input?: string): Promise<string> {
    const kubectlPath = kubernetesBinary(defaultRelease(), "kubectl");
    return (await this.other.exec(kubectlPath, ["--kubeconfig", kubeconfig, ...args], { timeoutMs: 180_000, input }))
      .stdout;
  }

  async close(): Promise<void> {
    await this.server.close();
    await stopGateway(this.dir).catch(() => undefined);
    for (const c of await this.runtime.list())
      if (!this.existing.includes(c)) await this.runtime.destroy(c).catch(() => undefined);
    await this.other.remove();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * Freezing idle clusters (issue 15), as a user on another machine meets it: a cluster nobody
 * talks to and with nothing of the tenant's in it is frozen (no CPU), the next kubectl through
 * the gateway thaws it and is answered, and the node never looked dead to the controller
 * manager (no NotReady, no pod marked unready). A cluster running the tenant's pods is left
 * alone. A frozen cluster stops and goes like any other.
 */
describe(
  "freezing an idle cluster, thawing it on the next connection",
  { skip: unlessRoot("real clusters"), timeout: 12 * 60_000 },
  () => {
    let f: FreezingServer | undefined;
    let id: string;
    let kubeconfig: string;
    const api = (method: string, path: string, body?: unknown) => f!.api(method, path, body);
    const kubectl = (args: string[], input?: string) => f!.kubectl(kubeconfig, args, input);
    const frozen = async () => (await f!.cluster(id)).frozen === true;

    before(async () => {
      f = await FreezingServer.start("frz", "198.51.104");
      ({ id, kubeconfig } = await f.create());
    });
    after(async () => {
      await f?.close();
    });

    it("freezes a quiet cluster (no CPU, still running); kubectl from another machine thaws it; the node never looked dead", async () => {
      const node = JSON.parse(await kubectl(["get", "nodes", "-o", "json"])) as {
        items: { status: { conditions: Condition[] }; spec: { taints?: unknown[] } }[];
      };
      const readySince = node.items[0].status.conditions.find((c) => c.type === "Ready")!;
      const coredns = async () =>
        (
          JSON.parse(await kubectl(["get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns", "-o", "json"])) as {
            items: { status: { conditions: Condition[] } }[];
          }
        ).items[0].status.conditions.find((c) => c.type === "Ready")!;
      const dnsReadySince = await coredns();
      assert.equal(readySince.status, "True");

      await until("the cluster frozen", frozen, 60_000);
      assert.equal((await api("GET", `/v1/clusters/${id}`)).json.phase, "running", "frozen is still running");
      assert.equal((await f!.runtime.status(id)).frozen, true);
      // Longer than the controller manager's own look at the leases can take: the thaw must hold it back.
      const before = (await cpuSeconds(clusterCgroup(id)))!;
      await sleep(25_000);
      const used = (await cpuSeconds(clusterCgroup(id)))! - before;
      assert.ok(used < 0.01, `a frozen cluster used ${used.toFixed(4)} s of CPU in 25 s`);
      // Its memory went to compressed swap (this host has it, or the server set it up at start).
      const compressing = !isCgroupV2() && (await compressedSwap()).state === "on";
      if (compressing) {
        const m = await memoryStat(id);
        process.stderr.write(
          `# frozen cluster's memory: ${m.rss.toFixed(0)} MiB resident, ${m.cache.toFixed(0)} MiB page cache, ${m.swap.toFixed(0)} MiB in compressed swap\n`,
        );
        assert.ok(m.rss < 64 && m.swap > 150, `compressed: ${JSON.stringify(m)}`);
      }
      const metrics = (await restCall(f!.server.url, undefined, "GET", "/metrics")).text;
      assert.match(metrics, /^tempkube_clusters_frozen 1$/m);
      if (compressing) {
        const stored = Number(/^tempkube_compressed_swap_bytes\{kind="stored"\} (\d+)/m.exec(metrics)?.[1] ?? 0);
        assert.ok(stored > 150 * 2 ** 20, `zram holds ${stored} bytes`);
      }

      const thawing = Date.now();
      assert.match(await kubectl(["get", "ns"]), /kube-system/);
      const thawMs = Date.now() - thawing;
      assert.equal(await frozen(), false);
      assert.equal((await f!.runtime.status(id)).frozen, undefined);
      const warm = Date.now();
      await kubectl(["get", "ns"]);
      process.stderr.write(
        `# frozen cluster → first kubectl answer through the gateway: ${thawMs} ms (the next kubectl: ${Date.now() - warm} ms)\n`,
      );

      // The controller manager's node monitor runs every 5 s: give it a few looks, then check it saw nothing wrong.
      await sleep(12_000);
      const after = JSON.parse(await kubectl(["get", "nodes", "-o", "json"])) as typeof node;
      const ready = after.items[0].status.conditions.find((c) => c.type === "Ready")!;
      if (ready.status !== "True")
        process.stderr.write(`# ${await runtimeErrorLines(f!.dir, id)}\n`.replace(/\n/g, "\n# "));
      assert.deepEqual(
        [ready.status, ready.lastTransitionTime],
        ["True", readySince.lastTransitionTime],
        `the node stayed Ready throughout (now ${ready.reason}: ${ready.message})`,
      );
      assert.deepEqual(after.items[0].spec.taints ?? [], [], "no unreachable or not-ready taint");
      assert.deepEqual(await coredns(), dnsReadySince, "CoreDNS was never marked unready");
      // The controller manager runs again: a Deployment gets its pod.
      await kubectl(["apply", "-f", "-"], BUSY);
      await kubectl(["rollout", "status", "deployment/busy", "--timeout=120s"]);
      // Frozen again while the test waited (nothing of the tenant's ran yet), and thawed by the apply.
      const counted = (await restCall(f!.server.url, undefined, "GET", "/metrics")).text;
      const count = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, "m").exec(counted)?.[1]);
      assert.ok(count("tempkube_cluster_thaws_total") >= 1, counted);
      assert.equal(
        count("tempkube_cluster_thaws_total"),
        count("tempkube_cluster_freezes_total"),
        "every freeze thawed",
      );
    });

    it("keeps a thawed cluster out of swap: a pod past its memory limit is OOM-killed, not swapped", async (t) => {
      if (isCgroupV2()) return t.skip("the cgroup v1 files are checked here");
      const guards = await swapGuards(id);
      assert.deepEqual(guards.swappiness, ["0"], "no cgroup of the cluster swaps");
      assert.equal(guards.memsw, guards.limit, "memory and swap together within the cluster's limit");
      await kubectl(["apply", "-f", "-"], HOG);
      await kubectl(["wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/hog", "--timeout=120s"]);
      const hog = JSON.parse(await kubectl(["get", "pod", "hog", "-o", "json"])) as {
        status: { containerStatuses: { state: { terminated?: { reason: string } } }[] };
      };
      assert.equal(hog.status.containerStatuses[0].state.terminated?.reason, "OOMKilled");
      assert.match(await kubectl(["logs", "hog"]), /Killed/);
      await kubectl(["delete", "pod", "hog", "--wait=true"]);
    });

    it("leaves a cluster alone while the tenant's pods run, and freezes it once they are gone", async () => {
      // The Deployment of the test before runs: several freeze times and idle checks pass unfrozen.
      await sleep(FREEZE_AFTER_MS + 25_000);
      // The record says frozen for the instant of each attempt (marked before the runtime looks,
      // so that no connection slips through): the cgroup is what tells, looked at a few times.
      for (let i = 0; i < 5; i++) {
        assert.equal((await f!.runtime.status(id)).frozen, undefined, "running the tenant's pod: not frozen");
        await sleep(1000);
      }
      await kubectl(["delete", "deployment", "busy", "--wait=true"]);
      await kubectl(["wait", "--for=delete", "pod", "-l", "app=busy", "--timeout=60s"]).catch(() => "");
      await until("the cluster frozen once the pods went", frozen, 90_000);
    });

    it("stops and deletes a frozen cluster, leaving no process or cgroup", async () => {
      assert.equal(await frozen(), true);
      const stopped = await api("POST", `/v1/clusters/${id}/stop?wait=true`);
      assert.equal(stopped.json.phase, "stopped", stopped.text);
      assert.equal(stopped.json.frozen, false);
      assert.deepEqual(
        (await f!.runtime.status(id)).components.filter((c) => c.running),
        [],
        "no process of a stopped cluster",
      );
      const started = await api("POST", `/v1/clusters/${id}/start?wait=true`);
      assert.equal(started.json.phase, "running", started.text);
      await until("frozen again", frozen, 60_000);
      const gone = await api("DELETE", `/v1/clusters/${id}?wait=true`);
      assert.ok(gone.status < 300, gone.text);
      assert.ok(!(await f!.runtime.list()).includes(id));
      assert.deepEqual(await leftoverCgroups(clusterCgroup(id)), []);
    });
  },
);

/**
 * A full host with frozen clusters on it (issue 15: more clusters than fit in memory): a create
 * puts the longest frozen to sleep instead of being refused, and that one's next connection
 * wakes it, putting the other (frozen by then) to sleep in its turn. Capacity 1 stands in for
 * a host whose memory holds one cluster.
 */
describe(
  "frozen clusters giving way on a full host",
  { skip: unlessRoot("real clusters"), timeout: 12 * 60_000 },
  () => {
    let f: FreezingServer | undefined;
    before(async () => {
      f = await FreezingServer.start("frw", "198.51.105", 1);
    });
    after(async () => {
      await f?.close();
    });

    it("a create on a full host puts the frozen cluster to sleep; its next kubectl wakes it and the other sleeps", async () => {
      const first = await f!.create();
      // Running and in use (not frozen): the host is full.
      const refused = await f!.api("POST", "/v1/clusters", { ttlMinutes: 20, size: "1-small" });
      assert.equal(refused.status, 429, refused.text);
      await until("the first cluster frozen", async () => (await f!.cluster(first.id)).frozen === true, 60_000);

      const second = await f!.create();
      assert.equal((await f!.cluster(first.id)).phase, "sleeping", "the frozen one gave way");
      assert.deepEqual(
        (await f!.runtime.status(first.id)).components.filter((c) => c.running),
        [],
        "asleep: none of its processes left",
      );

      await until("the second cluster frozen", async () => (await f!.cluster(second.id)).frozen === true, 60_000);
      // A wake takes seconds; client-go gives a TLS handshake 10 s (gateway.e2e.test.ts): a second try then.
      const getNs = () => f!.kubectl(first.kubeconfig, ["get", "ns"]);
      const answer = await getNs().catch((err: Error) => {
        if (!/TLS handshake timeout/.test(err.message)) throw err;
        return getNs();
      });
      assert.match(answer, /kube-system/, "the sleeping one woke for its connection");
      assert.equal((await f!.cluster(first.id)).phase, "running");
      assert.equal((await f!.cluster(second.id)).phase, "sleeping", "and the frozen one gave it its place");
    });
  },
);
