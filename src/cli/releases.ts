import { KUBERNETES_RELEASES, defaultRelease, findRelease, type KubernetesRelease } from "../setup/catalogue.js";
import { TempkubeError } from "../util/errors.js";

/** Turns user input ("default", "1.33", "v1.34.4") into catalogue releases, or a clear error. */
export function resolveReleases(inputs: string[]): KubernetesRelease[] {
  const out: KubernetesRelease[] = [];
  for (const input of inputs) {
    const release = input === "default" ? defaultRelease() : findRelease(input);
    if (!release) {
      const known = KUBERNETES_RELEASES.map((r) => `${r.minor} (${r.version})`).join(", ");
      throw new TempkubeError("invalid-input", `unknown Kubernetes version "${input}"; available: ${known}`);
    }
    if (!out.includes(release)) out.push(release);
  }
  return out;
}
