import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DEFAULT_KUBERNETES_MINOR } from "../setup/catalogue.js";
import { describeWarmPools, warmPoolOptions, warmPoolsBeyondCapacity } from "./warm-pool-options.js";

const invalid = (text: RegExp) => (e: Error & { type?: string }) => e.type === "invalid-input" && text.test(e.message);

describe("tempkube server's warm-pool options", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tempkube-pool-opts-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("keeps one cluster of the default shape when told nothing; reads --warm-pool's profiles", async () => {
    assert.equal(describeWarmPools(await warmPoolOptions(undefined, undefined)), `${DEFAULT_KUBERNETES_MINOR}/1-mid=1`);
    assert.equal(describeWarmPools(await warmPoolOptions("0", undefined)), "none");
    const pools = await warmPoolOptions("1.34/1-mid=2,1.33/1-small+1w+priv", undefined);
    assert.equal(describeWarmPools(pools), "1.34/1-mid=2,1.33/1-small+1w+priv=1");
    await assert.rejects(warmPoolOptions("1.34/1-mid=x", undefined), invalid(/^--warm-pool profile 1 .*count/));
  });

  it("reads --warm-pool-file as YAML with versions kept as written, and says what is wrong with it", async () => {
    const file = join(dir, "pools.yaml");
    await writeFile(file, "- version: 1.33\n  size: 1-small\n  count: 2\n- {workers: 1}\n");
    assert.equal(
      describeWarmPools(await warmPoolOptions(undefined, file)),
      `1.33/1-small=2,${DEFAULT_KUBERNETES_MINOR}/1-mid+1w=1`,
    );
    await writeFile(file, "- version: 1.30\n");
    await assert.rejects(warmPoolOptions(undefined, file), invalid(/entry 1: version "1\.30" is not offered/));
    await writeFile(file, "- [\n");
    await assert.rejects(warmPoolOptions(undefined, file), invalid(/pools\.yaml is not YAML: /));
    await assert.rejects(warmPoolOptions(undefined, join(dir, "absent.yaml")), invalid(/absent\.yaml: no such file$/));
    await assert.rejects(warmPoolOptions("2", file), invalid(/^give --warm-pool or --warm-pool-file, not both$/));
  });

  it("warns when the pools want more than the host can give them", async () => {
    const pools = await warmPoolOptions("1.34/1-mid=2,1.33/1-small=2", undefined);
    assert.equal(warmPoolsBeyondCapacity(pools, 5), undefined);
    assert.match(warmPoolsBeyondCapacity(pools, 4) ?? "", /want 4 clusters and the host holds 4: they fill 3 at most/);
  });
});
