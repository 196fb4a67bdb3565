import assert from "node:assert/strict";
import { it } from "node:test";
import { ClusterLayout, deepestSocketPath, MAX_SOCKET_PATH } from "./layout.js";

it("finds the deepest unix socket under a cluster, so that a too-deep data dir is refused before anything starts", () => {
  const deepest = deepestSocketPath(new ClusterLayout("abc12345", "/var/lib/tempkube/clusters"), [
    "abc12345-control-plane",
    "abc12345-worker-1",
  ]);
  assert.equal(
    deepest,
    "/var/lib/tempkube/clusters/abc12345/nodes/abc12345-control-plane/kubelet/pod-resources/0123456789",
  );
  assert.ok(deepest.length <= MAX_SOCKET_PATH, "the default data dir and id length fit");
  const long = deepestSocketPath(new ClusterLayout("abcdefghijklmnop", "/var/lib/tempkube/clusters"), [
    "abcdefghijklmnop-control-plane",
  ]);
  assert.ok(long.length > MAX_SOCKET_PATH, "a 16-character id does not, under /var/lib/tempkube");
});
