import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { unlessRoot } from "../../testing/root.js";
import { newClusterId } from "../../core/cluster-spec.js";
import { Kubectl } from "../../testing/kubectl.js";
import type { LocalClusterState } from "./cluster-state.js";
import { HostInspection } from "./host-inspection.js";
import { LocalRuntime } from "./local-runtime.js";
import { DEFAULT_KUBERNETES_MINOR } from "../../setup/catalogue.js";

/**
 * The busybox:1.35 image behaves like the official one for what users script with it
 * (issue 10 item 6): each check below failed on Debian's busybox-static, the image
 * tempkube shipped before (wget -T segfaulted, no nc -z, sh dropped `data-1`, sysctl only
 * in /sbin). Run as the tenant, in one real cluster.
 */
const runtime = new LocalRuntime();
const host = new HostInspection();

const MANIFESTS = `
apiVersion: v1
kind: ConfigMap
metadata: { name: settings }
data: { data-1: value-1, data_2: value-2 }
---
apiVersion: v1
kind: Pod
metadata: { name: web, labels: { app: web } }
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: web
    image: busybox:1.35
    # nc -l takes one connection and writes what it got where httpd serves it.
    command: [sh, -c, "mkdir -p /www && echo hello-busybox > /www/index.html && (nc -l -p 9000 > /www/nc.txt &) && exec httpd -f -p 8080 -h /www"]
---
apiVersion: v1
kind: Service
metadata: { name: web }
spec:
  selector: { app: web }
  ports: [{ port: 80, targetPort: 8080 }]
---
apiVersion: v1
kind: Pod
metadata: { name: client }
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: client
    image: busybox:1.35
    command: [sleep, "3600"]
    envFrom: [{ configMapRef: { name: settings } }]
---
apiVersion: v1
kind: Pod
metadata: { name: env-dump }
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: busybox:1.35
    # As upstream's ConfigMap/Secret envFrom conformance tests run it.
    command: [sh, -c, env]
    envFrom: [{ configMapRef: { name: settings } }]
    env: [{ name: dotted.name, value: dotted-value }]
`;

describe("busybox:1.35 in a pod", { skip: unlessRoot("real clusters"), timeout: 10 * 60_000 }, () => {
  const id = `bbx${newClusterId().slice(0, 6)}`;
  let state: LocalClusterState;
  let kubectl: Kubectl;
  let webIp = "";

  /** Runs a shell line in the client pod; exit code and combined output, never throws on a non-zero exit. */
  async function sh(line: string): Promise<{ code: number; out: string }> {
    const out = await kubectl.run(["exec", "client", "--", "sh", "-c", `{ ${line}; } 2>&1; echo "exit=$?"`]);
    const m = /exit=(\d+)\s*$/.exec(out);
    assert.ok(m, `no exit code in: ${out}`);
    return { code: Number(m[1]), out: out.slice(0, m.index) };
  }

  before(async () => {
    // A killed earlier run cannot clean up after itself.
    for (const old of await runtime.list()) if (old.startsWith("bbx")) await runtime.destroy(old);
    const made = await runtime.provision({
      id,
      kubernetesVersion: DEFAULT_KUBERNETES_MINOR,
      privileged: false,
      size: "1-small",
      workers: 0,
    });
    state = await runtime.readState(id);
    kubectl = await Kubectl.withKubeconfig(made.credentials.tenantKubeconfig);
    await kubectl.run(["apply", "-f", "-"], MANIFESTS);
    await kubectl.run(["wait", "--for=condition=Ready", "pod/web", "pod/client", "--timeout=120s"]);
    webIp = (await kubectl.run(["get", "pod", "web", "-o", "jsonpath={.status.podIP}"])).trim();
  });

  after(async () => {
    await runtime.destroy(id).catch(() => undefined);
  });

  it("keeps environment variables whose names are not identifiers (envFrom a ConfigMap)", async () => {
    await kubectl.run(["wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/env-dump", "--timeout=120s"]);
    const logs = (await kubectl.run(["logs", "env-dump"])).split("\n");
    for (const line of ["data-1=value-1", "data_2=value-2", "dotted.name=dotted-value"])
      assert.ok(logs.includes(line), `${line} in: ${logs.join(" | ")}`);
    const nested = await sh("sh -c env");
    assert.match(nested.out, /^data-1=value-1$/m, "a nested sh passes it on too");
  });

  it("wget -T, -O, -q: fetches from httpd by pod IP and by Service name, and times out instead of crashing", async () => {
    const saved = await sh(`wget -T 5 -q -O /tmp/page http://${webIp}:8080/ && cat /tmp/page`);
    assert.deepEqual(saved, { code: 0, out: "hello-busybox\n" });
    // By short Service name: glibc's resolver in the image, through resolv.conf's search list.
    const byName = await sh("wget -T 5 -q -O - http://web/");
    assert.deepEqual(byName, { code: 0, out: "hello-busybox\n" });
    const missing = await sh(`wget -T 5 -q -O - http://${webIp}:8080/absent`);
    assert.equal(missing.code, 1, missing.out);
    assert.match(missing.out, /404 Not Found/);
    // A listener that holds the connection and never answers (its stdin, `sleep`, stays
    // open): -T ends the wait with wget's alarm message, exit 1 (Debian's build died with
    // 139). `timeout 60` only bounds a hang, were -T ignored; that fails the assertions.
    // (Its descriptors all /dev/null, or the exec session would wait for it.)
    await sh("(sleep 60 | nc -l -p 9100 &) </dev/null >/dev/null 2>&1; sleep 1");
    const silent = await sh("timeout 60 wget -T 2 -q -O - http://127.0.0.1:9100/");
    assert.deepEqual(silent, { code: 1, out: "wget: download timed out\n" });
  });

  it("nc -z tells an open port from a closed one; nc -l receives what nc sends", async () => {
    assert.deepEqual(await sh(`nc -z -w 3 ${webIp} 8080`), { code: 0, out: "" });
    assert.equal((await sh(`nc -z -w 3 ${webIp} 8089`)).code, 1);
    const sent = await sh(`echo over-nc | nc -w 3 ${webIp} 9000`);
    assert.equal(sent.code, 0, sent.out);
    let got = "";
    for (let i = 0; i < 20 && got !== "over-nc\n"; i++) {
      got = (await sh(`wget -T 5 -q -O - http://${webIp}:8080/nc.txt`)).out;
      if (got !== "over-nc\n") await new Promise((r) => setTimeout(r, 500));
    }
    assert.equal(got, "over-nc\n");
  });

  it("nslookup answers the kubernetes Service from cluster DNS", async () => {
    const clusterIp = (await kubectl.run(["get", "service", "kubernetes", "-o", "jsonpath={.spec.clusterIP}"])).trim();
    const answer = new RegExp(
      `Name:\\s+kubernetes\\.default\\.svc\\.cluster\\.local\\s+Address:\\s+${clusterIp.replace(/\./g, "\\.")}\\n`,
    );
    const fqdn = await sh("nslookup kubernetes.default.svc.cluster.local");
    assert.equal(fqdn.code, 0, fqdn.out);
    assert.match(fqdn.out, answer);
    // A name without a dot goes through resolv.conf's search list; busybox 1.35 prints the
    // answer and exits 1 for the suffixes that answer NXDOMAIN (upstream behaviour).
    assert.match((await sh("nslookup kubernetes")).out, answer);
    // A dotted name is asked as it stands, never searched (networking/nslookup.c
    // add_query_with_search): the official image fails `nslookup kubernetes.default` the same
    // way since busybox 1.28.4 (docker-library/busybox#48, #61, #75); so must this one.
    const dotted = await sh("nslookup kubernetes.default");
    assert.equal(dotted.code, 1, dotted.out);
    assert.match(dotted.out, /server can't find kubernetes\.default: /);
    assert.doesNotMatch(dotted.out, answer);
    // glibc's resolver (wget) does search it: plain HTTP to the apiserver's TLS port answers 400.
    assert.match((await sh("wget -T 5 -q -O - http://kubernetes.default:443/")).out, /400 Bad Request/);
  });

  it("has every applet in /bin, sysctl among them; httpd, sleep and date work", async () => {
    const missing = await sh("for a in $(busybox --list); do [ -x /bin/$a ] || echo missing $a; done");
    assert.deepEqual(missing, { code: 0, out: "" });
    assert.deepEqual(await sh("command -v sysctl"), { code: 0, out: "/bin/sysctl\n" });
    assert.deepEqual(await sh("sysctl -n kernel.hostname"), { code: 0, out: "client\n" });
    assert.deepEqual(await sh("for a in httpd nc wget nslookup; do command -v $a; done"), {
      code: 0,
      out: "/bin/httpd\n/bin/nc\n/bin/wget\n/bin/nslookup\n",
    });
    assert.deepEqual(await sh("sleep 0.1 && echo slept"), { code: 0, out: "slept\n" });
    assert.deepEqual(await sh("date +%Z; date -u -d @86400 +%Y-%m-%dT%H:%M"), {
      code: 0,
      out: "UTC\n1970-01-02T00:00\n",
    });
    assert.match((await sh("busybox | head -1")).out, /^BusyBox v1\.35\.0 /);
  });

  it("leaves nothing on the host once destroyed", async () => {
    await runtime.destroy(id);
    assert.deepEqual(await host.leftovers(id, state.network), []);
  });
});
