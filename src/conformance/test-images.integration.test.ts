import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { addonBinary, busyboxBinary } from "../setup/artifact-paths.js";
import { buildLayer } from "../setup/image-archive.js";
import { run } from "../util/exec.js";
import { TEST_IMAGE_RECIPES, type TestImageInputs } from "./test-images.js";

/**
 * The images made of Debian's programs (nginx, httpd, dig) and the busybox root filesystem,
 * unpacked and run with chroot: each program finds its libraries, configuration and users
 * in the image alone. Needs root (chroot) and the busybox and CoreDNS builds of `tempkube setup`.
 */
const missing = [
  busyboxBinary(),
  addonBinary("coredns"),
  "/usr/sbin/nginx",
  "/usr/sbin/apache2",
  "/usr/bin/dig",
].filter((f) => !existsSync(f));
const skip =
  process.getuid?.() !== 0
    ? "needs root (chroot)"
    : missing.length
      ? `needs ${missing.join(", ")} (tempkube setup; scripts/conformance installs the Debian packages)`
      : false;

describe("conformance test images of Debian programs", { skip }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tk-test-images-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function unpack(id: string): Promise<string> {
    const inputs: TestImageInputs = {
      reference: `registry.k8s.io/e2e-test-images/${id.toLowerCase()}:test`,
      kubernetesSource: "/nonexistent",
      agnhost: "/nonexistent",
      nnp: "/nonexistent",
      sampleApiserver: "/nonexistent",
      etcd: "/nonexistent",
      busyboxBinary: busyboxBinary(),
      corednsBinary: addonBinary("coredns"),
      logFile: join(dir, "build.log"),
      scratchDir: dir,
      agnhostVersion: "test",
    };
    const spec = await TEST_IMAGE_RECIPES[id](inputs);
    const root = join(dir, id);
    await run("mkdir", ["-p", root]);
    await run("tar", ["-x", "-C", root], { input: await buildLayer(spec.entries) });
    return root;
  }

  it("nginx reads its configuration and finds its user", async () => {
    const root = await unpack("Nginx");
    const { stderr } = await run("chroot", [root, "/usr/sbin/nginx", "-t"]);
    assert.match(stderr, /configuration file \/etc\/nginx\/nginx.conf test is successful/);
  });

  it("httpd (Apache) reads its configuration and loads its modules", async () => {
    const root = await unpack("Httpd");
    // Its logs go to /proc/self/fd/2 as the official image's do: a container has /proc, a chroot needs it lent.
    await run("mkdir", ["-p", join(root, "proc")]);
    await run("mount", ["-t", "proc", "proc", join(root, "proc")]);
    let out: { stdout: string; stderr: string };
    try {
      out = await run("chroot", [root, "/usr/sbin/apache2", "-t", "-f", "/usr/local/apache2/conf/httpd.conf"]);
    } finally {
      await run("umount", [join(root, "proc")]);
    }
    const { stdout, stderr } = out;
    assert.match(stdout + stderr, /Syntax OK/);
  });

  it("the DNS image runs dig and getent (glibc NSS) under its shell", async () => {
    const root = await unpack("GlibcDnsTesting");
    const { stdout } = await run("chroot", [
      root,
      "/bin/sh",
      "-c",
      "dig -v 2>&1; getent passwd root; test -x /coredns && echo coredns",
    ]);
    assert.match(stdout, /DiG 9\./);
    // /etc/hosts is the kubelet's to mount: getent proves glibc's NSS modules load from the passwd file.
    assert.match(stdout, /^root:x:0:0:/m);
    assert.match(stdout, /coredns/);
  });
});
