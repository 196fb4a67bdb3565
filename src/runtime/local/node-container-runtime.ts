import { dirname } from "node:path";
import { containerRuntimeBinary } from "../../setup/artifact-paths.js";

/**
 * Which containerd a node runs. Debian's containerd 1.6 (with its runc) is the default;
 * `TEMPKUBE_EXPERIMENTAL_CONTAINERD2=1` runs containerd 2.x and runc as built by
 * `tempkube setup --container-runtime` instead, for trying Kubernetes 1.35+ on this host
 * (docs/kubernetes-versions.md). Off by default: nodes do not use it until the switch.
 */
export interface NodeContainerRuntime {
  kind: "debian-containerd-1.6" | "containerd-2";
  containerd: string;
  /** runc, named in containerd's runc options (BinaryName); undefined: the one on PATH. */
  runc?: string;
  /** containerd finds its shim (containerd-shim-runc-v2) on PATH. */
  path: string;
}

const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export function nodeContainerRuntime(env: NodeJS.ProcessEnv = process.env): NodeContainerRuntime {
  if (env.TEMPKUBE_EXPERIMENTAL_CONTAINERD2 !== "1")
    return { kind: "debian-containerd-1.6", containerd: "/usr/bin/containerd", path: SYSTEM_PATH };
  const containerd = containerRuntimeBinary("containerd");
  return {
    kind: "containerd-2",
    containerd,
    runc: containerRuntimeBinary("runc"),
    path: `${dirname(containerd)}:${SYSTEM_PATH}`,
  };
}
