import assert from "node:assert/strict";
import { it } from "node:test";
import { planNetwork } from "./network.js";

it("gives each cluster its own bridge, node and pod ranges", () => {
  const a = planNetwork("aaa", 1, ["aaa-control-plane", "aaa-worker-1"]);
  const b = planNetwork("bbb", 2, ["bbb-control-plane"]);
  assert.equal(a.bridge, "tkb1");
  assert.deepEqual(a.nodes.map((n) => [n.ip, n.podCidr, n.hostVeth]), [
    ["172.30.1.2", "10.129.0.0/24", "tkv1n0"],
    ["172.30.1.3", "10.129.1.0/24", "tkv1n1"],
  ]);
  assert.equal(b.clusterCidr, "10.130.0.0/16");
  assert.notEqual(a.nodes[0].netns, b.nodes[0].netns);
  for (const n of [...a.nodes, ...b.nodes]) assert.ok(n.hostVeth.length <= 15, "interface names fit IFNAMSIZ");
});

it("refuses indexes outside the address plan", () => {
  assert.throws(() => planNetwork("x", 0, ["n"]));
  assert.throws(() => planNetwork("x", 121, ["n"]));
});
