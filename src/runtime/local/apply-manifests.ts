import type { KubernetesRelease } from "../../setup/catalogue.js";
import { kubernetesBinary } from "../../setup/artifact-paths.js";
import { run } from "../../util/exec.js";

/** `kubectl apply --server-side` of YAML documents, as the admin of kubeconfig. */
export async function applyManifests(release: KubernetesRelease, kubeconfig: string, docs: string): Promise<void> {
  await run(
    kubernetesBinary(release, "kubectl"),
    ["--kubeconfig", kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", "-"],
    { input: docs, timeoutMs: 60_000 },
  );
}
