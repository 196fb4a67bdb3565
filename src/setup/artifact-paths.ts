import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { cacheDir } from "../util/paths.js";
import {
  ADDONS,
  BUSYBOX,
  CONTAINER_RUNTIME,
  IMAGES,
  KUBERNETES_COMPONENTS,
  type AddonRelease,
  type ContainerRuntimeBinary,
  type ContainerRuntimeRelease,
  type ImageKey,
  type KubernetesComponent,
  type KubernetesRelease,
} from "./catalogue.js";

/**
 * Where each built artifact lives in the cache, versioned so several releases live side by
 * side: paths only, for what runs clusters; installer.ts builds and verifies them.
 */
export const artifactRoots = {
  kubernetes: (r: KubernetesRelease) => join(cacheDir(), "kubernetes", r.version),
  addon: (a: AddonRelease) => join(cacheDir(), "addons", `${a.name}-${a.version}`),
  image: (key: ImageKey) => join(cacheDir(), "images", IMAGES[key].replace(/[/:]/g, "_")),
  containerRuntime: (r: ContainerRuntimeRelease) => join(cacheDir(), "container-runtime", `${r.name}-${r.version}`),
  busybox: () => join(cacheDir(), "busybox", `busybox-${BUSYBOX.version}-${BUSYBOX.variant}`),
  localTool: (tool: LocalTool) => join(cacheDir(), "tools", `${tool}-${localToolVersion(tool)}`),
};

export function kubernetesBinary(release: KubernetesRelease, component: KubernetesComponent): string {
  return join(artifactRoots.kubernetes(release), component);
}

/**
 * Whether the release's binaries are in the cache, cheaply (for the request path of a
 * create): the manifest is written last, once every binary is in place (artifact-dir.ts
 * produce), so its presence with every component's file means a finished build. Whether
 * the files are intact (checksums) is `tempkube versions`' and `doctor`'s question.
 */
export function kubernetesInstalled(release: KubernetesRelease): boolean {
  const root = artifactRoots.kubernetes(release);
  return existsSync(join(root, "manifest.json")) && KUBERNETES_COMPONENTS.every((c) => existsSync(join(root, c)));
}

export function addonBinary(name: AddonRelease["name"]): string {
  const addon = ADDONS.find((a) => a.name === name)!;
  return join(artifactRoots.addon(addon), name);
}

/** containerd 2.x's and runc's binaries (catalogue CONTAINER_RUNTIME), once `tempkube setup --container-runtime` built them. */
export function containerRuntimeBinary(binary: ContainerRuntimeBinary): string {
  const release = CONTAINER_RUNTIME.find((r) => r.commands.some((c) => c.binary === binary))!;
  return join(artifactRoots.containerRuntime(release), binary);
}

export function busyboxBinary(): string {
  return join(artifactRoots.busybox(), "busybox");
}

export function imageArchive(key: ImageKey): string {
  return join(artifactRoots.image(key), "image.tar");
}

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Go programs of this repository that clusters run (tools/<name>), versioned by a hash of their source. */
export const LOCAL_TOOLS = ["cluster-controllers"] as const;
export type LocalTool = (typeof LOCAL_TOOLS)[number];

export function localToolDir(tool: LocalTool): string {
  return join(REPO_ROOT, "tools", tool);
}

const toolVersions = new Map<LocalTool, string>();

/**
 * Hash of the tool's source (go.mod, go.sum and every .go file, by name and content), read
 * once per process (every cluster start asks for the binary).
 */
export function localToolVersion(tool: LocalTool): string {
  const known = toolVersions.get(tool);
  if (known) return known;
  const hash = createHash("sha256");
  const files = readdirSync(localToolDir(tool))
    .filter((f) => f === "go.mod" || f === "go.sum" || f.endsWith(".go"))
    .sort();
  for (const file of files)
    hash
      .update(`${file}\0`)
      .update(readFileSync(join(localToolDir(tool), file)))
      .update("\0");
  const version = hash.digest("hex").slice(0, 12);
  toolVersions.set(tool, version);
  return version;
}

export function localToolBinary(tool: LocalTool): string {
  return join(artifactRoots.localTool(tool), tool);
}
