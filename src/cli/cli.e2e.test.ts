import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { newClusterId } from "../core/cluster-spec.js";
import { HostInspection } from "../runtime/local/host-inspection.js";
import { LocalRuntime } from "../runtime/local/local-runtime.js";
import { IMAGES } from "../setup/catalogue.js";
import { writeImageArchive } from "../setup/image-archive.js";
import { tempkube } from "../testing/cli.js";
import { Kubectl } from "../testing/kubectl.js";
import { unlessRoot } from "../testing/root.js";

describe(
  "tempkube CLI",
  { timeout: 15 * 60_000, skip: unlessRoot("the CLI's runtime commands boot real clusters") },
  () => {
    const runtime = new LocalRuntime();
    const host = new HostInspection();
    const id = `e2e${newClusterId().slice(0, 6)}`;
    let dir: string;

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "tempkube-cli-"));
    });
    after(async () => {
      await runtime.destroy(id).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    });

    it("has help with examples on every command", async () => {
      for (const cmd of [[], ["setup"], ["versions"], ["doctor"], ["runtime", "create"], ["up"], ["bench"]]) {
        const res = await tempkube([...cmd, "--help"]);
        assert.equal(res.code, 0, cmd.join(" "));
        assert.match(res.stdout, /Usage: tempkube/);
        if (cmd.length) assert.match(res.stdout, /Example/, `${cmd.join(" ")} --help shows an example`);
      }
    });

    it("refuses bad input with a message naming the field, and a meaningful exit code", async () => {
      const size = await tempkube(["runtime", "create", "--size", "huge"]);
      assert.equal(size.code, 2);
      assert.match(size.stderr, /--size must be one of 1-small, 1-mid, 1-large/);
      const version = await tempkube(["runtime", "create", "--version", "1.99"]);
      assert.equal(version.code, 2);
      assert.match(version.stderr, /kubernetesVersion "1.99" is not offered/);
      const missing = await tempkube(["runtime", "stop", "nosuchcluster"]);
      assert.equal(missing.code, 3);
      assert.match(missing.stderr, /cluster nosuchcluster does not exist/);
    });

    it("doctor finds nothing blocking on this host", async () => {
      const res = await tempkube(["doctor"]);
      assert.equal(res.code, 0, res.stdout);
      assert.match(res.stdout, /This host can run tempkube clusters/);
      const checks = JSON.parse((await tempkube(["doctor", "-o", "json"])).stdout) as { name: string; ok: boolean }[];
      assert.ok(checks.some((c) => c.name === "Debian packages" && c.ok));
    });

    it("creates a cluster that outlives the command, and loads a user's image into it", async () => {
      const kubeconfig = join(dir, "kubeconfig");
      const created = await tempkube([
        "runtime",
        "create",
        "--id",
        id,
        "--size",
        "1-small",
        "--privileged",
        "--kubeconfig",
        kubeconfig,
      ]);
      assert.equal(created.code, 0, created.stderr);
      assert.equal(created.stdout.trim(), id);
      assert.match(created.stderr, /✓ apiserver ready/);
      // The creating process is gone; a new one adopts the cluster from disk.
      const status = JSON.parse((await tempkube(["runtime", "status", id])).stdout) as {
        phase: string;
        components: { running: boolean }[];
      };
      assert.equal(status.phase, "running");
      assert.ok(status.components.length >= 8 && status.components.every((c) => c.running));

      const archive = join(dir, "hello-e2e.tar");
      const busybox = await readFile("/bin/busybox");
      await writeImageArchive(
        {
          reference: "registry.example.com/team/hello:1.0",
          entries: [{ type: "file", path: "bin/busybox", content: busybox, mode: 0o755 }],
          entrypoint: ["/bin/busybox", "echo", "hello from a user image"],
        },
        archive,
      );
      // For every cluster: into the host registry, from which the node pulls it on first use.
      const loaded = await tempkube(["runtime", "load-image", archive]);
      assert.equal(loaded.code, 0, loaded.stderr);
      assert.match(loaded.stderr, /registry\.example\.com\/team\/hello:1\.0/);
      const kubectl = await Kubectl.withKubeconfig(await readFile(kubeconfig, "utf8"));
      await kubectl.run(["run", "hello", "--image=registry.example.com/team/hello:1.0", "--restart=Never"]);
      await kubectl.run(["wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/hello", "--timeout=120s"]);
      assert.equal((await kubectl.run(["logs", "hello"])).trim(), "hello from a user image");
    });

    it("with --privileged admits privileged pods, still refuses host ports below 1024 but 80 and 443", async () => {
      const kubectl = await Kubectl.withKubeconfig(await readFile(join(dir, "kubeconfig"), "utf8"));
      const pod = (name: string, extra: string) =>
        `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"${name}"},"spec":{"containers":[{"name":"c","image":"${IMAGES.busybox}","command":["sleep","600"]${extra}}]}}`;
      assert.equal(
        await kubectl.refusal(["apply", "-f", "-"], pod("priv", `,"securityContext":{"privileged":true}`)),
        undefined,
      );
      assert.equal(
        await kubectl.refusal(["apply", "-f", "-"], pod("web80", `,"ports":[{"containerPort":80,"hostPort":80}]`)),
        undefined,
      );
      const ssh = await kubectl.refusal(
        ["apply", "-f", "-"],
        pod("ssh", `,"ports":[{"containerPort":22,"hostPort":22}]`),
      );
      assert.match(ssh ?? "accepted", /host ports below 1024 are not allowed, except 80 and 443/);
      await kubectl.run(["delete", "pod", "priv", "web80", "--wait=false"]);
    });

    it("stops, starts and destroys it", async () => {
      assert.equal((await tempkube(["runtime", "stop", id])).code, 0);
      assert.equal(
        (JSON.parse((await tempkube(["runtime", "status", id])).stdout) as { phase: string }).phase,
        "stopped",
      );
      const started = await tempkube(["runtime", "start", id]);
      assert.equal(started.code, 0, started.stderr);
      assert.match((await tempkube(["runtime", "list"])).stdout, new RegExp(`${id}\\s+running`));
      const state = await runtime.readState(id);
      assert.equal((await tempkube(["runtime", "destroy", id])).code, 0);
      assert.deepEqual(await host.leftovers(id, state.network), []);
    });
  },
);
