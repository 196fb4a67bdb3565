import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { releaseOrphanedRuncState } from "./task-state.js";

it("removes runc state only of this data dir's containers whose bundle is gone", async () => {
  const tmp = await mkdtemp(join(tmpdir(), "task-state-"));
  try {
    const base = join(tmp, "clusters");
    const runc = join(tmp, "runc");
    const bundle = (root: string, id: string) =>
      join(
        root,
        "c1",
        "nodes",
        "c1-control-plane",
        "containerd",
        "state",
        "io.containerd.runtime.v2.task",
        "k8s.io",
        id,
      );
    const state = async (id: string, bundlePath: string) => {
      await mkdir(join(runc, "k8s.io", id), { recursive: true });
      await writeFile(
        join(runc, "k8s.io", id, "state.json"),
        JSON.stringify({ config: { labels: [`bundle=${bundlePath}`] } }),
      );
    };
    await state("gone", bundle(base, "gone"));
    await state("alive", bundle(base, "alive"));
    await mkdir(bundle(base, "alive"), { recursive: true });
    await state("other", bundle(join(tmp, "other-data-dir"), "other"));
    await state("elsewhere", join(base, "c1", "somewhere-else"));
    await mkdir(join(runc, "k8s.io", "no-state"), { recursive: true });

    assert.equal(await releaseOrphanedRuncState(base, runc), 1);
    assert.ok(!existsSync(join(runc, "k8s.io", "gone")));
    for (const kept of ["alive", "other", "elsewhere", "no-state"])
      assert.ok(existsSync(join(runc, "k8s.io", kept)), kept);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
});
