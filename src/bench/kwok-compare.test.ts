import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { formatKwok, kwokTools } from "./kwok-compare.js";

describe("bench --compare kwok", () => {
  it("finds kwok and etcd beside kwokctl, and names what is missing with how to get it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tkkwt-"));
    try {
      const kwokctl = join(dir, "kwokctl");
      await writeFile(kwokctl, "");
      assert.throws(() => kwokTools(kwokctl), /kwok .*\/kwok is missing \(go install sigs\.k8s\.io\/kwok\/cmd\/kwok@/);
      await writeFile(join(dir, "kwok"), "");
      assert.throws(() => kwokTools(kwokctl), /etcd .*\/etcd is missing \(--etcd PATH/);
      assert.deepEqual(kwokTools(kwokctl, undefined, kwokctl), { kwokctl, kwok: join(dir, "kwok"), etcd: kwokctl });
      assert.throws(() => kwokTools(join(dir, "nope")), /kwokctl .*nope is missing/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("prints both medians and the ratio against kwokctl", () => {
    const text = formatKwok({
      kubernetesVersion: "v1.37.2",
      runs: 3,
      kwokctlMs: [4000, 4400, 5000],
      tempkubeMs: [6000, 6600, 9000],
    });
    assert.match(text, /kwokctl create cluster .* p50 4\.40 s/);
    assert.match(text, /tempkube runtime create .* p50 6\.60 s {2}\(1\.50× kwokctl; target ≤ 0\.8×\)/);
  });
});
