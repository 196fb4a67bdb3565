import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { containerdConfig } from "./component-configs.js";
import { NodeLayout } from "./layout.js";
import { nodeContainerRuntime } from "./node-container-runtime.js";

describe("node container runtime", () => {
  it("is containerd 2 and runc as tempkube builds them, never the host's", () => {
    const runtime = nodeContainerRuntime();
    assert.match(runtime.containerd, /container-runtime\/containerd-v2\.4\.2\/containerd$/);
    assert.match(runtime.ctr, /container-runtime\/containerd-v2\.4\.2\/ctr$/);
    assert.match(runtime.runc, /container-runtime\/runc-v1\.5\.3\/runc$/);
    assert.ok(
      runtime.path.startsWith(runtime.containerd.replace(/\/containerd$/, ":")),
      "the shim beside containerd comes first",
    );
  });

  it("writes containerd 2's config with the node's own paths, the built runc and no NRI", () => {
    const node = new NodeLayout("/tmp/tkq-x/nodes/cp");
    const v4 = containerdConfig(node, "/cache/runc");
    assert.match(v4, /^version = 4$/m);
    // Version 4: the sockets are plugins; an omitted ttrpc block would be the host-wide socket.
    assert.match(v4, /\[plugins\."io\.containerd\.server\.v1\.ttrpc"\]\n\s+address = "\/tmp\/tkq-x\/nodes\/cp\//);
    assert.doesNotMatch(v4, /^\[(grpc|ttrpc|metrics|debug)\]$/m);
    assert.doesNotMatch(v4, /imports/, "no host drop-ins");
    assert.match(
      v4,
      /\[plugins\."io\.containerd\.cri\.v1\.images"\.pinned_images\]\n\s+sandbox = "tempkube\.local\/pause:/,
    );
    assert.match(v4, /netns_mounts_under_state_dir = true/);
    assert.match(v4, /BinaryName = "\/cache\/runc"/);
    assert.match(v4, /config_path = "\/tmp\/tkq-x\/nodes\/cp\//);
    assert.match(v4, /"io\.containerd\.nri\.v1\.nri"/);
    assert.doesNotMatch(v4, /io\.containerd\.grpc\.v1\.cri/, "no version 2 section left for containerd to migrate");
  });
});
