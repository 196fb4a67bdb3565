import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { KUBERNETES_COMPONENTS, type KubernetesRelease } from "../setup/catalogue.js";

/**
 * Makes `release` look installed in the cache at `cache` (a test's own TEMPKUBE_CACHE): empty
 * component files and a manifest, as far as the cheap request-path check
 * (artifact-paths.ts kubernetesInstalled) looks. Nothing here runs.
 */
export async function fakeInstall(cache: string, release: KubernetesRelease): Promise<void> {
  const root = join(cache, "kubernetes", release.version);
  await mkdir(root, { recursive: true });
  for (const component of KUBERNETES_COMPONENTS) await writeFile(join(root, component), "");
  await writeFile(
    join(root, "manifest.json"),
    JSON.stringify({ name: "kubernetes", version: release.version, source: "test", files: {} }),
  );
}
