import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { newClusterId } from "../../core/cluster-spec.js";
import { CONTAINER_RUNTIME } from "../../setup/catalogue.js";
import { versionStatuses } from "../../setup/installer.js";
import { Kubectl } from "../../testing/kubectl.js";
import { unlessRoot } from "../../testing/root.js";
import { LocalRuntime } from "./local-runtime.js";

/**
 * Every installed minor other than the default (the rest of the suite runs on the default):
 * scripts/test installs one older minor, so CI runs this for it; a host with more installed
 * (`tempkube versions install 1.36 1.35`) runs it for each. A cluster of that minor comes up,
 * the apiserver and every node report that minor's version on containerd 2, a Deployment
 * answers through its Service by DNS name, and all of it comes back after a stop and start.
 */
const APP = `
apiVersion: apps/v1
kind: Deployment
metadata: { name: hello }
spec:
  replicas: 1
  selector: { matchLabels: { app: hello } }
  template:
    metadata: { labels: { app: hello } }
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: hello
        image: busybox:1.35
        command: [sh, -c, "mkdir -p /w && echo hello-$(cat /etc/hostname | cut -c1-5) > /w/index.html && exec httpd -f -p 8080 -h /w"]
---
apiVersion: v1
kind: Service
metadata: { name: hello }
spec:
  selector: { app: hello }
  ports: [{ port: 80, targetPort: 8080 }]
`;

const statuses = await versionStatuses();
const others = statuses.filter((s) => s.installed && !s.isDefault).map((s) => s.release);
const containerd = CONTAINER_RUNTIME.find((r) => r.name === "containerd")!;

describe(
  "clusters of the other installed minors",
  {
    skip: unlessRoot("real clusters") || (others.length === 0 ? "no minor besides the default is installed" : false),
    timeout: others.length * 6 * 60_000,
  },
  () => {
    const runtime = new LocalRuntime({ clusterEgress: "none" });
    const made: string[] = [];
    after(async () => {
      for (const id of made) await runtime.destroy(id).catch(() => undefined);
    });

    for (const release of others) {
      it(`${release.version}: comes up on containerd 2, serves a Deployment through its Service by name, stops and starts`, async () => {
        const id = `xv${newClusterId().slice(0, 6)}`;
        made.push(id);
        const { credentials } = await runtime.provision({
          id,
          kubernetesVersion: release.minor,
          privileged: false,
          size: "1-small",
          workers: 0,
        });
        const kubectl = await Kubectl.withKubeconfig(credentials.tenantKubeconfig);
        const version = JSON.parse(await kubectl.run(["version", "-o", "json"])) as {
          serverVersion: { gitVersion: string };
        };
        assert.equal(version.serverVersion.gitVersion, release.version);
        const nodes = await kubectl.run([
          "get",
          "nodes",
          "-o",
          "jsonpath={range .items[*]}{.status.nodeInfo.kubeletVersion} {.status.nodeInfo.containerRuntimeVersion}{'\\n'}{end}",
        ]);
        // The node runs the kubelet the policy chooses for this host's cgroup version: its own
        // release while that kubelet runs on cgroup v1 (core/kubelet-policy.ts).
        const kubelet = runtime.kubeletFor(release.minor)?.version ?? release.version;
        assert.deepEqual(nodes.trim().split("\n"), [`${kubelet} containerd://${containerd.version.slice(1)}`]);

        const answer = async () => {
          await kubectl.run(["rollout", "status", "deployment/hello", "--timeout=120s"]);
          // A client pod whose lookup of the Service's name goes through CoreDNS. Its answer is
          // read from its log once it has succeeded: `kubectl run -i` can attach after a fast
          // container has already exited and then print nothing.
          const client = `client-${Date.now()}`;
          await kubectl.run([
            "run",
            client,
            "--image=busybox:1.35",
            "--restart=Never",
            "--command",
            "--",
            "sh",
            "-c",
            "for i in $(seq 1 20); do wget -qO- -T 3 http://hello.default.svc.cluster.local && exit 0; sleep 1; done; exit 1",
          ]);
          await kubectl.run(["wait", "--for=jsonpath={.status.phase}=Succeeded", `pod/${client}`, "--timeout=120s"]);
          assert.match((await kubectl.run(["logs", client])).trim(), /^hello-/);
          await kubectl.run(["delete", "pod", client, "--wait=false"]);
        };
        await kubectl.run(["apply", "-f", "-"], APP);
        await answer();

        await runtime.stop(id);
        assert.equal((await runtime.status(id)).phase, "stopped");
        await runtime.start(id);
        await answer();
        await runtime.destroy(id);
        made.splice(made.indexOf(id), 1);
      });
    }
  },
);
