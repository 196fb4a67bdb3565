import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ArtifactDir } from "./artifact-dir.js";
import { KUBERNETES_RELEASES } from "./catalogue.js";
import { kubernetesGoMod, kubernetesVersionLdflags } from "./go-source-build.js";

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
    const mod = kubernetesGoMod(KUBERNETES_RELEASES[0]);
    assert.match(mod, /require k8s\.io\/kubernetes v1\.34\.\d+/);
    assert.match(mod, /k8s\.io\/client-go => k8s\.io\/client-go v0\.34\.\d+/);
    assert.match(mod, /godebug default=go1\.24/);
  });

  it("stamps the version into both component-base and client-go", () => {
    const flags = kubernetesVersionLdflags("v1.34.4", "2026-01-01T00:00:00Z");
    assert.match(flags, /k8s\.io\/component-base\/version\.gitVersion=v1\.34\.4/);
    assert.match(flags, /k8s\.io\/client-go\/pkg\/version\.gitVersion=v1\.34\.4/);
    assert.match(flags, /gitMinor=34/);
  });
});
