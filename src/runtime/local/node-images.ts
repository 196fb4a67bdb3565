import { existsSync } from "node:fs";
import { readFile, stat, writeFile } from "node:fs/promises";
import { IMAGES, type ImageKey } from "../../setup/catalogue.js";
import { imageArchive } from "../../setup/artifact-paths.js";
import { run } from "../../util/exec.js";
import { ensureImageTemplate, seedContainerdRoot } from "./image-template.js";
import { nodeContainerRuntime } from "./node-container-runtime.js";
import type { ClusterLayout, NodeLayout } from "./layout.js";
import { waitFor } from "./wait.js";

/** Archive path → fingerprint (size:mtime): a changed archive has another. */
export type Fingerprints = Record<string, string>;

/** Archives a node's containerd holds, by fingerprint, so none is imported twice. */
async function importedImages(nl: NodeLayout): Promise<Fingerprints> {
  return JSON.parse(await readFile(nl.importedImagesFile, "utf8").catch(() => "{}")) as Fingerprints;
}

async function recordImported(nl: NodeLayout, fingerprints: Fingerprints): Promise<void> {
  await writeFile(nl.importedImagesFile, JSON.stringify({ ...(await importedImages(nl)), ...fingerprints }, null, 2));
}

/** The built-in images every node holds from the start (users' images come from the host registry). */
export function builtInImageArchives(): string[] {
  return (Object.keys(IMAGES) as ImageKey[]).map((k) => imageArchive(k));
}

export async function fingerprints(archives: string[]): Promise<Fingerprints> {
  const out: Fingerprints = {};
  for (const a of archives) {
    const st = await stat(a);
    out[a] = `${st.size}:${st.mtimeMs}`;
  }
  return out;
}

/** New nodes start from the host's image template (no import at all). */
export async function seedNodes(dataDir: string, layout: ClusterLayout, nodes: string[]): Promise<void> {
  const archives = builtInImageArchives();
  const template = await ensureImageTemplate(dataDir, archives);
  const current = await fingerprints(archives);
  await Promise.all(
    nodes.map(async (node) => {
      const nl = layout.node(node);
      if (existsSync(nl.containerdRoot)) return;
      await seedContainerdRoot(template, nl.containerdRoot);
      await recordImported(nl, current);
    }),
  );
}

/** Imports what a node lacks (a built-in image that changed while it was stopped). */
export async function importMissingImages(layout: ClusterLayout, node: string, current: Fingerprints): Promise<void> {
  const nl = layout.node(node);
  const imported = await importedImages(nl);
  const missing = Object.keys(current).filter((a) => imported[a] !== current[a]);
  if (missing.length === 0) return;
  await waitFor(`containerd of ${node}`, async () => existsSync(nl.containerdSocket), 30_000, 20);
  for (const archive of missing) {
    await ctrImport(nl.containerdSocket, archive);
    await recordImported(nl, { [archive]: current[archive] });
  }
}

export async function ctrImport(socket: string, archive: string): Promise<void> {
  await run(
    nodeContainerRuntime().ctr,
    ["--address", socket, "--namespace", "k8s.io", "images", "import", "--snapshotter", "overlayfs", archive],
    { timeoutMs: 120_000 },
  );
}
