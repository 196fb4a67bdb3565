import { dirname } from "node:path";
import { containerRuntimeBinary } from "../../setup/artifact-paths.js";

/**
 * The containerd every node runs: containerd 2.x and runc as `tempkube setup` builds them
 * from the Go module proxy (catalogue CONTAINER_RUNTIME), never a containerd or runc the host
 * happens to have. Debian's containerd 1.6 is end of life and Kubernetes 1.36+ needs
 * containerd 2 (docs/kubernetes-versions.md).
 */
export interface NodeContainerRuntime {
  containerd: string;
  /** runc, named in containerd's runc options (BinaryName). */
  runc: string;
  /** ctr, for importing image archives into a node's (or the image template's) containerd. */
  ctr: string;
  /** containerd finds its shim (containerd-shim-runc-v2, built beside it) on PATH. */
  path: string;
}

const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export function nodeContainerRuntime(): NodeContainerRuntime {
  const containerd = containerRuntimeBinary("containerd");
  return {
    containerd,
    runc: containerRuntimeBinary("runc"),
    ctr: containerRuntimeBinary("ctr"),
    path: `${dirname(containerd)}:${SYSTEM_PATH}`,
  };
}
