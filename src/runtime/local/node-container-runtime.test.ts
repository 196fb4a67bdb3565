import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { containerd2Config, containerdConfig } from "./component-configs.js";
import { NodeLayout } from "./layout.js";
import { nodeContainerRuntime } from "./node-container-runtime.js";

describe("node container runtime", () => {
  it("is Debian's containerd 1.6 unless containerd 2 is asked for", () => {
    assert.equal(nodeContainerRuntime({}).kind, "debian-containerd-1.6");
    assert.equal(nodeContainerRuntime({}).containerd, "/usr/bin/containerd");
    assert.equal(nodeContainerRuntime({ TEMPKUBE_EXPERIMENTAL_CONTAINERD2: "0" }).kind, "debian-containerd-1.6");
    const two = nodeContainerRuntime({ TEMPKUBE_EXPERIMENTAL_CONTAINERD2: "1" });
    assert.equal(two.kind, "containerd-2");
    assert.match(two.containerd, /container-runtime\/containerd-v2\.4\.2\/containerd$/);
    assert.match(two.runc!, /container-runtime\/runc-v1\.5\.3\/runc$/);
    assert.ok(
      two.path.startsWith(two.containerd.replace(/\/containerd$/, ":")),
      "the shim beside containerd comes first",
    );
  });

  it("writes containerd 2's config in version 3 with the node's own paths, runc and no NRI", () => {
    const node = new NodeLayout("/tmp/tkq-x/nodes/cp");
    const v3 = containerd2Config(node, "/cache/runc");
    assert.match(v3, /^version = 3$/m);
    assert.match(
      v3,
      /\[plugins\."io\.containerd\.cri\.v1\.images"\.pinned_images\]\n\s+sandbox = "tempkube\.local\/pause:/,
    );
    assert.match(v3, /netns_mounts_under_state_dir = true/);
    assert.match(v3, /BinaryName = "\/cache\/runc"/);
    assert.match(v3, /config_path = "\/tmp\/tkq-x\/nodes\/cp\//);
    assert.match(v3, /"io\.containerd\.nri\.v1\.nri"/);
    assert.doesNotMatch(v3, /io\.containerd\.grpc\.v1\.cri/, "no version 2 section left for containerd to migrate");
    assert.match(containerdConfig(node), /^version = 2$/m);
  });
});
