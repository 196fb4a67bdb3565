import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, it } from "node:test";
import { unlessRoot } from "../testing/root.js";
import { BareApiServer } from "../runtime/local/bare-apiserver.js";
import { run } from "../util/exec.js";
import { nodeContainerRuntime } from "../runtime/local/node-container-runtime.js";
import {
  ADDONS,
  CONTAINER_RUNTIME,
  IMAGES,
  KUBERNETES_RELEASES,
  defaultRelease,
  findRelease,
  type ImageKey,
} from "./catalogue.js";
import { LOCAL_TOOLS, addonBinary, artifacts, imageArchive, kubernetesBinary } from "./installer.js";

const execFileP = promisify(execFile);

/** The minors scripts/test installs (`scripts/setup --version 1.37 1.34`); other offered ones may or may not be. */
const INSTALLED_BY_TEST_SETUP = ["1.37", "1.34"].map((minor) => findRelease(minor)!);
const addonVersion = (name: string) => ADDONS.find((a) => a.name === name)!.version;
const CLI = join(dirname(fileURLToPath(import.meta.url)), "..", "cli", "main.js");

describe("setup on this host", { skip: unlessRoot("containerd runs the built images") }, () => {
  it("is idempotent: a second run finds everything cached and builds nothing", async () => {
    const { stderr } = await execFileP(process.execPath, [CLI, "setup"], { env: process.env });
    assert.doesNotMatch(stderr, /building/);
    assert.match(stderr, /everything present/);
    // The 1 after the tools: busybox, built from source for its image.
    assert.equal(
      (stderr.match(/cached/g) ?? []).length,
      1 + ADDONS.length + CONTAINER_RUNTIME.length + LOCAL_TOOLS.length + 1 + Object.keys(IMAGES).length,
    );
  });

  it("lists every offered minor, 1.37 and 1.34 installed side by side, 1.37 the default", async () => {
    const { stdout } = await execFileP(process.execPath, [CLI, "versions", "-o", "json"]);
    const versions = JSON.parse(stdout) as { minor: string; installed: boolean; default: boolean }[];
    assert.deepEqual(
      versions.map((v) => v.minor),
      KUBERNETES_RELEASES.map((r) => r.minor),
    );
    assert.deepEqual(
      versions.filter((v) => v.minor === "1.37" || v.minor === "1.34").map((v) => [v.minor, v.installed, v.default]),
      [
        ["1.37", true, true],
        ["1.34", true, false],
      ],
    );
    assert.deepEqual(
      versions.filter((v) => v.default).map((v) => v.minor),
      ["1.37"],
    );
  });

  for (const release of INSTALLED_BY_TEST_SETUP) {
    it(`builds Kubernetes ${release.version} whose every component reports that version`, async () => {
      for (const component of [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubelet",
        "kube-proxy",
      ] as const) {
        const { stdout } = await run(kubernetesBinary(release, component), ["--version"]);
        assert.equal(stdout.trim(), `Kubernetes ${release.version}`, component);
      }
      const { stdout } = await run(kubernetesBinary(release, "kubectl"), ["version", "--client", "-o", "json"]);
      assert.equal(
        (JSON.parse(stdout) as { clientVersion: { gitVersion: string } }).clientVersion.gitVersion,
        release.version,
      );
    });
  }

  it("builds the add-ons at their pinned versions", async () => {
    // Each binary's own report of its version: the ldflags (kine, local-path) or the
    // source's constant (CoreDNS's coremain.CoreVersion) must match the catalogue's pin.
    const expect: Record<string, [string[], (version: string) => string]> = {
      kine: [["--version"], (v) => `kine version ${v}`],
      coredns: [["-version"], (v) => `CoreDNS-${v.replace(/^v/, "")}`],
      "local-path-provisioner": [["--version"], (v) => `version ${v}`],
    };
    for (const addon of ADDONS) {
      const [args, line] = expect[addon.name];
      const { stdout } = await run(addonBinary(addon.name), args);
      assert.ok(stdout.includes(line(addon.version)), `${addon.name}: ${stdout.trim()}`);
    }
  });

  it("tempkube kubectl runs the default version's kubectl", async () => {
    const { stdout } = await execFileP(process.execPath, [CLI, "kubectl", "version", "--client", "-o", "json"]);
    assert.equal(
      (JSON.parse(stdout) as { clientVersion: { gitVersion: string } }).clientVersion.gitVersion,
      defaultRelease().version,
    );
  });

  for (const release of INSTALLED_BY_TEST_SETUP) {
    it(`kine + kube-apiserver ${release.version} answer /readyz, /version and kubectl get ns`, async () => {
      await using bare = await BareApiServer.start(release);
      const version = await bare.api.get<{ gitVersion: string }>("/version");
      assert.equal(version.body?.gitVersion, release.version);
      const { stdout } = await run(kubernetesBinary(release, "kubectl"), [
        "--kubeconfig",
        bare.kubeconfigPath,
        "get",
        "ns",
        "-o",
        "name",
      ]);
      assert.match(stdout, /namespace\/default/);
      assert.match(stdout, /namespace\/kube-system/);
    });
  }

  it("builds containerd and runc at their pinned versions, the binaries every node runs", async () => {
    const runtime = nodeContainerRuntime();
    const containerd = CONTAINER_RUNTIME.find((r) => r.name === "containerd")!;
    const runc = CONTAINER_RUNTIME.find((r) => r.name === "runc")!;
    assert.match(
      (await run(runtime.containerd, ["--version"])).stdout,
      new RegExp(`\\s${containerd.version}(\\s|$)`, "m"),
    );
    assert.match((await run(runtime.ctr, ["--version"])).stdout, new RegExp(`\\s${containerd.version}(\\s|$)`, "m"));
    const { stdout } = await run(runtime.runc, ["--version"]);
    assert.match(stdout, new RegExp(`^runc version ${runc.version.slice(1)}$`, "m"));
    assert.match(stdout, /seccomp/, "built with libseccomp");
  });

  it("every image archive imports into the built containerd and its entrypoint runs with the built runc", async () => {
    const runtime = nodeContainerRuntime();
    const dir = await mkdtemp(join(tmpdir(), "tempkube-images-"));
    await mkdir(join(dir, "root"));
    const socket = join(dir, "containerd.sock");
    await writeFile(
      join(dir, "config.toml"),
      `version = 4\nroot = "${dir}/root"\nstate = "${dir}/state"\ndisabled_plugins = ["io.containerd.nri.v1.nri"]\n[plugins."io.containerd.server.v1.grpc"]\n  address = "${socket}"\n[plugins."io.containerd.server.v1.ttrpc"]\n  address = "${socket}.ttrpc"\n`,
    );
    const { spawn } = await import("node:child_process");
    // PATH: containerd finds the shim built beside it, not one the host may have.
    const containerd = spawn(runtime.containerd, ["--config", join(dir, "config.toml")], {
      stdio: "ignore",
      env: { ...process.env, PATH: runtime.path },
    });
    try {
      const ctr = (args: string[]) =>
        run(runtime.ctr, ["--address", socket, "--namespace", "test", ...args], { timeoutMs: 60_000 });
      for (
        let i = 0;
        i < 100 &&
        !(await ctr(["version"]).then(
          () => true,
          () => false,
        ));
        i++
      )
        await new Promise((r) => setTimeout(r, 100));
      const runs: Record<ImageKey, [string[], RegExp]> = {
        pause: [["/pause", "-v"], /pause\.c/],
        coredns: [
          ["/coredns", "-version"],
          new RegExp(`CoreDNS-${addonVersion("coredns").slice(1).replace(/\./g, "\\.")}`),
        ],
        localPath: [
          ["local-path-provisioner", "--version"],
          new RegExp(addonVersion("local-path-provisioner").replace(/\./g, "\\.")),
        ],
        // Every applet in /bin, as in the official image (Debian's build put sysctl in /sbin).
        busybox: [
          ["sh", "-c", "echo hello from $(basename $(readlink /bin/sh)) $(command -v sysctl)"],
          /hello from busybox \/bin\/sysctl/,
        ],
      };
      for (const key of Object.keys(IMAGES) as ImageKey[]) {
        await ctr(["images", "import", imageArchive(key)]);
        const { stdout: list } = await ctr(["images", "ls", "-q"]);
        assert.ok(list.split("\n").includes(IMAGES[key]), `${IMAGES[key]} is listed after import`);
        const [cmd, pattern] = runs[key];
        const { stdout, stderr } = await ctr([
          "run",
          "--rm",
          "--runc-binary",
          runtime.runc,
          IMAGES[key],
          `t-${key.toLowerCase()}`,
          ...cmd,
        ]);
        assert.match(stdout + stderr, pattern, `${IMAGES[key]} runs`);
      }
      assert.ok((await artifacts.image("busybox").verify()).ok);
    } finally {
      containerd.kill("SIGKILL");
      await run("sh", ["-c", `grep -o '${dir}[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l`]).catch(
        () => undefined,
      );
      await rm(dir, { recursive: true, force: true });
    }
  });
});
