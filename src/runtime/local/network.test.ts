import assert from "node:assert/strict";
import { it } from "node:test";
import { ADDRESS_PLAN, MAX_CLUSTER_INDEX, planNetwork, secondOctetRangeCidrs } from "./network.js";

it("gives each cluster its own bridge, node and pod ranges", () => {
  const a = planNetwork("aaa", 1, ["aaa-control-plane", "aaa-worker-1"]);
  const b = planNetwork("bbb", 2, ["bbb-control-plane"]);
  assert.equal(a.bridge, "tkb1");
  assert.deepEqual(
    a.nodes.map((n) => [n.ip, n.podCidr, n.hostVeth]),
    [
      ["172.30.1.2", "10.129.0.0/24", "tkv1n0"],
      ["172.30.1.3", "10.129.1.0/24", "tkv1n1"],
    ],
  );
  assert.equal(b.clusterCidr, "10.130.0.0/16");
  assert.notEqual(a.nodes[0].netns, b.nodes[0].netns);
  for (const n of [...a.nodes, ...b.nodes]) assert.ok(n.hostVeth.length <= 15, "interface names fit IFNAMSIZ");
});

it("refuses indexes outside the address plan", () => {
  assert.throws(() => planNetwork("x", 0, ["n"]));
  assert.throws(() => planNetwork("x", 121, ["n"]));
});

it("keeps exactly the clusters' pod ranges off the way out, and not the addresses beside them", () => {
  const cidrs = secondOctetRangeCidrs(10, 129, 128 + MAX_CLUSTER_INDEX);
  const covered = new Set<number>();
  for (const c of cidrs) {
    const [, second, bits] = /^10\.(\d+)\.0\.0\/(\d+)$/.exec(c)!.map(Number);
    const size = 2 ** (16 - bits);
    assert.equal(second % size, 0, `${c} is aligned`);
    for (let v = second; v < second + size; v++) covered.add(v);
  }
  assert.deepEqual(
    [...covered].sort((a, b) => a - b),
    Array.from({ length: MAX_CLUSTER_INDEX }, (_, i) => 129 + i),
  );
  assert.ok(
    ADDRESS_PLAN.includes("10.129.0.0/16") &&
      !ADDRESS_PLAN.some((c) => c.startsWith("10.128.") || c.startsWith("10.255.")),
  );
});

it("names node namespaces by cluster and node, at the path ip netns mounts them", () => {
  const net = planNetwork("abc", 3, ["abc-control-plane"]);
  assert.equal(net.nodes[0].netns, "tk-abc-abc-control-plane");
  assert.equal(net.nodes[0].netnsPath, "/run/netns/tk-abc-abc-control-plane");
});
