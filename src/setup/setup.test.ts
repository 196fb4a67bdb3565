import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ArtifactDir } from "./artifact-dir.js";
import {
  CONTAINER_RUNTIME,
  DEFAULT_KUBERNETES_MINOR,
  KUBERNETES_RELEASES,
  defaultMinorOverride,
  findRelease,
} from "./catalogue.js";
import { containerRuntimeInstallArgs, kubernetesGoMod, kubernetesVersionLdflags } from "./go-source-build.js";

describe("artifact cache", () => {
  it("detects a missing, truncated or corrupted artifact and rebuilds it", async () => {
    const root = await mkdtemp(join(tmpdir(), "tempkube-artifact-"));
    try {
      const dir = new ArtifactDir(join(root, "thing"));
      assert.deepEqual(await dir.verify(), { ok: false, reason: "not built" });
      await dir.produce({ name: "thing", version: "v1", source: "test" }, async (out) =>
        writeFile(join(out, "bin"), "0123456789"),
      );
      assert.equal((await dir.verify()).ok, true);
      await writeFile(dir.path("bin"), "01234");
      assert.match(((await dir.verify()) as { reason: string }).reason, /size/);
      await writeFile(dir.path("bin"), "x123456789");
      assert.match(((await dir.verify()) as { reason: string }).reason, /corrupt/);
      await rm(dir.path("bin"));
      assert.match(((await dir.verify()) as { reason: string }).reason, /missing/);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it("counts an artifact recorded under another version as stale", async () => {
    const root = await mkdtemp(join(tmpdir(), "tempkube-artifact-"));
    try {
      const dir = new ArtifactDir(join(root, "image"));
      await dir.produce({ name: "image-busybox", version: "1.35", source: "local" }, async (out) =>
        writeFile(join(out, "image.tar"), "x"),
      );
      assert.equal((await dir.verify("1.35")).ok, true);
      assert.deepEqual(await dir.verify("1.35.0-glibc"), { ok: false, reason: "built as 1.35, wanted 1.35.0-glibc" });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it("never leaves a half-made artifact in place when a build fails", async () => {
    const root = await mkdtemp(join(tmpdir(), "tempkube-artifact-"));
    try {
      const dir = new ArtifactDir(join(root, "thing"));
      await assert.rejects(
        dir.produce({ name: "thing", version: "v1", source: "test" }, async (out) => {
          await writeFile(join(out, "bin"), "partial");
          throw new Error("compiler crashed");
        }),
        /compiler crashed/,
      );
      assert.deepEqual(await dir.verify(), { ok: false, reason: "not built" });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe("source build recipe", () => {
  it("replaces every staging module with the release's published version", () => {
    const mod = kubernetesGoMod(findRelease("1.34")!);
    assert.match(mod, /require k8s\.io\/kubernetes v1\.34\.\d+/);
    assert.match(mod, /k8s\.io\/client-go => k8s\.io\/client-go v0\.34\.\d+/);
    assert.match(mod, /^go 1\.24\.0$/m);
    assert.match(mod, /godebug default=go1\.24/);
    assert.doesNotMatch(mod, /streaming/, "1.34 has no streaming staging modules");
  });

  it("follows each release's own go line and its staging modules (streaming split out in 1.36)", () => {
    const mod = kubernetesGoMod(findRelease("1.37")!);
    assert.match(mod, /^go 1\.26\.0$/m);
    assert.match(mod, /godebug default=go1\.26/);
    assert.match(mod, /k8s\.io\/cri-streaming => k8s\.io\/cri-streaming v0\.37\.2/);
    assert.match(mod, /k8s\.io\/streaming => k8s\.io\/streaming v0\.37\.2/);
    assert.match(kubernetesGoMod(findRelease("1.35")!), /godebug default=go1\.25/);
  });

  it("makes 1.37 the default unless an offered minor is asked for by TEMPKUBE_DEFAULT_MINOR", () => {
    if (!process.env.TEMPKUBE_DEFAULT_MINOR) assert.equal(DEFAULT_KUBERNETES_MINOR, "1.37");
    assert.equal(defaultMinorOverride(undefined), undefined);
    assert.equal(defaultMinorOverride(""), undefined);
    assert.equal(defaultMinorOverride("1.37"), "1.37");
    assert.throws(() => defaultMinorOverride("1.9"), /TEMPKUBE_DEFAULT_MINOR=1\.9 is not an offered minor/);
  });

  it("offers each minor once, newest first, every patch matching its staging version", () => {
    const minors = KUBERNETES_RELEASES.map((r) => r.minor);
    assert.deepEqual(minors, [...new Set(minors)]);
    assert.deepEqual(
      minors,
      [...minors].sort((a, b) => Number(b.split(".")[1]) - Number(a.split(".")[1])),
    );
    for (const r of KUBERNETES_RELEASES) {
      assert.ok(r.version.startsWith(`v${r.minor}.`), r.version);
      assert.equal(r.stagingVersion, r.version.replace(/^v1\./, "v0."), r.version);
    }
  });

  it("stamps the version into both component-base and client-go", () => {
    const flags = kubernetesVersionLdflags("v1.34.4", "2026-01-01T00:00:00Z");
    assert.match(flags, /k8s\.io\/component-base\/version\.gitVersion=v1\.34\.4/);
    assert.match(flags, /k8s\.io\/client-go\/pkg\/version\.gitVersion=v1\.34\.4/);
    assert.match(flags, /gitMinor=34/);
  });

  it("installs containerd's three commands and runc at their pins, with upstream's build tags", () => {
    const argsOf = (name: string) => {
      const release = CONTAINER_RUNTIME.find((r) => r.name === name)!;
      return release.commands.map((c) => containerRuntimeInstallArgs(release, c));
    };
    const containerd = argsOf("containerd");
    assert.deepEqual(
      containerd.map((a) => a.at(-1)),
      [
        "github.com/containerd/containerd/v2/cmd/containerd@v2.4.2",
        "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@v2.4.2",
        "github.com/containerd/containerd/v2/cmd/ctr@v2.4.2",
      ],
    );
    assert.match(containerd[0]!.join(" "), /version\.Version=v2\.4\.2/);
    assert.match(containerd[1]!.join(" "), /-tags urfave_cli_no_docs,no_grpc/);
    const [runc] = argsOf("runc");
    assert.equal(runc!.at(-1), "github.com/opencontainers/runc@v1.5.3");
    assert.match(runc!.join(" "), /-tags seccomp,urfave_cli_no_docs/);
    assert.equal(CONTAINER_RUNTIME.find((r) => r.name === "runc")!.commands[0]!.cgo, true, "seccomp needs cgo");
  });
});
