import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  componentUse,
  formatComponents,
  perClusterByComponent,
  totalUse,
  type ComponentUse,
} from "./process-memory.js";

const use = (privateMiB: number, cpuSeconds: number): ComponentUse => ({
  processes: 1,
  privateMiB,
  swappedMiB: 0,
  pssMiB: privateMiB + 1,
  rssMiB: privateMiB * 2,
  cpuSeconds,
});

describe("component use", () => {
  it("reads this process from /proc, by its program's name", async () => {
    const mine = await componentUse([process.pid, 2 ** 22 + 1]);
    assert.deepEqual(Object.keys(mine), [process.argv0.split("/").pop()], "a pid that is gone counts for nothing");
    const me = Object.values(mine)[0];
    assert.equal(me.processes, 1);
    assert.ok(me.privateMiB > 1 && me.rssMiB >= me.privateMiB && me.pssMiB > 0, JSON.stringify(me));
    assert.ok(me.cpuSeconds > 0);
  });

  it("averages per cluster: memory at the window's end, cores from the CPU seconds within it", () => {
    const before = [{ kubelet: use(20, 10) }, { kubelet: use(22, 30) }];
    const after: Record<string, ComponentUse>[] = [
      { kubelet: use(21, 13), "kube-apiserver": use(150, 5) },
      { kubelet: use(23, 31) },
    ];
    const rows = perClusterByComponent(before, after, 100);
    assert.deepEqual(
      rows.map((r) => r.component),
      ["kube-apiserver", "kubelet"],
      "largest private memory first",
    );
    const kubelet = rows.find((r) => r.component === "kubelet")!;
    assert.equal(kubelet.privateMiB, 22);
    assert.equal(kubelet.cores, (13 + 31 - 10 - 30) / 2 / 100);
    assert.equal(totalUse(after[0]).privateMiB, 171);
    assert.match(formatComponents(rows), /kube-apiserver\s+75\.0 MiB\s+75\.5 MiB\s+150\.0 MiB\s+0\.0250 core/);
  });
});
