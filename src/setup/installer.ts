import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { mkdir, readdir, rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { run } from "../util/exec.js";
import { goEnv } from "./go-source-build.js";
import { dirname, join } from "node:path";
import { progress, seconds } from "../util/log.js";
import { withFileLock } from "../util/lock.js";
import { cacheDir, logsDir } from "../util/paths.js";
import { ArtifactDir, type ArtifactManifest } from "./artifact-dir.js";
import { buildBusybox } from "./busybox-build.js";
import type { BinarySource } from "./binary-source.js";
import {
  ADDONS, BUSYBOX, IMAGES, KUBERNETES_COMPONENTS, KUBERNETES_RELEASES, defaultRelease, imageContentVersion,
  type AddonRelease, type ImageKey, type KubernetesComponent, type KubernetesRelease,
} from "./catalogue.js";
import { writeImageArchive } from "./image-archive.js";
import { IMAGE_RECIPES } from "./image-recipes.js";

/** Cache layout, versioned so several releases live side by side. */
export const artifacts = {
  kubernetes: (r: KubernetesRelease) => new ArtifactDir(join(cacheDir(), "kubernetes", r.version)),
  addon: (a: AddonRelease) => new ArtifactDir(join(cacheDir(), "addons", `${a.name}-${a.version}`)),
  image: (key: ImageKey) => new ArtifactDir(join(cacheDir(), "images", IMAGES[key].replace(/[/:]/g, "_"))),
  busybox: () => new ArtifactDir(join(cacheDir(), "busybox", `busybox-${BUSYBOX.version}-${BUSYBOX.variant}`)),
};

export function kubernetesBinary(release: KubernetesRelease, component: KubernetesComponent): string {
  return artifacts.kubernetes(release).path(component);
}

export function addonBinary(name: AddonRelease["name"]): string {
  const addon = ADDONS.find((a) => a.name === name)!;
  return artifacts.addon(addon).path(name);
}

export function busyboxBinary(): string {
  return artifacts.busybox().path("busybox");
}

export function imageArchive(key: ImageKey): string {
  return artifacts.image(key).path("image.tar");
}

/** Ensures one artifact exists and is intact; builds it (with progress and a log file) otherwise. */
async function ensure(label: string, dir: ArtifactDir, meta: { name: string; version: string; source: string },
  build: (outDir: string, logFile: string) => Promise<void>): Promise<ArtifactManifest> {
  const started = Date.now();
  const check = await dir.verify(meta.version);
  if (check.ok) {
    progress(`  ✓ ${label}: cached (checked in ${seconds(Date.now() - started)})`);
    return check.manifest;
  }
  await mkdir(logsDir(), { recursive: true });
  const logFile = join(logsDir(), `${meta.name}-${meta.version}.log`);
  progress(`  … ${label}: ${check.reason === "not built" ? "building" : `rebuilding (${check.reason})`}; log: ${logFile}`);
  const manifest = await dir.produce(meta, (out) => build(out, logFile));
  progress(`  ✓ ${label}: built in ${seconds(Date.now() - started)}`);
  return manifest;
}

/** One setup at a time per cache: two concurrent builds of one artifact would clobber each other. */
export function withSetupLock<T>(fn: () => Promise<T>): Promise<T> {
  return withFileLock(join(cacheDir(), "setup.lock"), "another tempkube setup", fn);
}

export async function ensureKubernetes(release: KubernetesRelease, source: BinarySource): Promise<ArtifactManifest> {
  return ensure(`kubernetes ${release.version} (${KUBERNETES_COMPONENTS.join(", ")})`, artifacts.kubernetes(release),
    { name: "kubernetes", version: release.version, source: source.name },
    (out, log) => source.kubernetes(release, KUBERNETES_COMPONENTS, out, log));
}

export async function ensureAddons(source: BinarySource): Promise<void> {
  for (const addon of ADDONS) {
    await ensure(`${addon.name} ${addon.version}`, artifacts.addon(addon),
      { name: addon.name, version: addon.version, source: source.name },
      (out, log) => source.addon(addon, out, log));
  }
}

/** BusyBox from its upstream source (Debian's orig tarball), for the busybox:1.35 image. */
export async function ensureBusybox(): Promise<void> {
  await ensure(`busybox ${BUSYBOX.version} (${BUSYBOX.variant}, the official image's configuration)`, artifacts.busybox(),
    { name: "busybox", version: `${BUSYBOX.version}-${BUSYBOX.variant}`, source: "source" },
    (out, log) => buildBusybox(out, log));
}

export async function ensureImages(): Promise<void> {
  for (const key of Object.keys(IMAGES) as ImageKey[]) {
    const reference = IMAGES[key];
    await ensure(`image ${reference}`, artifacts.image(key), { name: `image-${key}`, version: imageContentVersion(key), source: "local" },
      async (out, logFile) => {
        const spec = await IMAGE_RECIPES[key]({ addonBinary, busyboxBinary: busyboxBinary(), kubernetes: defaultRelease(), logFile, scratchDir: out });
        await writeImageArchive(spec, join(out, "image.tar"));
        // Only the archive is the artifact; intermediate files (the pause binary) go.
        for (const f of await readdir(out)) if (f !== "image.tar") await rm(join(out, f), { recursive: true, force: true });
      });
  }
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
function localToolVersion(tool: LocalTool): string {
  const known = toolVersions.get(tool);
  if (known) return known;
  const hash = createHash("sha256");
  const files = readdirSync(localToolDir(tool)).filter((f) => f === "go.mod" || f === "go.sum" || f.endsWith(".go")).sort();
  for (const file of files) hash.update(`${file}\0`).update(readFileSync(join(localToolDir(tool), file))).update("\0");
  const version = hash.digest("hex").slice(0, 12);
  toolVersions.set(tool, version);
  return version;
}

function localToolArtifact(tool: LocalTool): ArtifactDir {
  return new ArtifactDir(join(cacheDir(), "tools", `${tool}-${localToolVersion(tool)}`));
}

export function localToolBinary(tool: LocalTool): string {
  return localToolArtifact(tool).path(tool);
}

export async function ensureLocalTools(): Promise<void> {
  for (const tool of LOCAL_TOOLS) {
    const version = localToolVersion(tool);
    await ensure(`${tool} (tools/${tool}, ${version})`, localToolArtifact(tool), { name: tool, version, source: "repository" },
      (out, log) => run("go", ["build", "-trimpath", "-ldflags", "-s -w", "-o", join(out, tool), "."],
        { cwd: localToolDir(tool), env: { ...goEnv(false), GOFLAGS: "-buildvcs=false -mod=readonly" }, logFile: log }).then(() => undefined));
  }
}

/** Everything a cluster of the given releases needs. Idempotent; a warm run takes seconds. */
export async function setupAll(releases: KubernetesRelease[], source: BinarySource): Promise<void> {
  const started = Date.now();
  progress(`tempkube setup: cache ${cacheDir()}`);
  await withSetupLock(async () => {
    for (const release of releases) await ensureKubernetes(release, source);
    await ensureAddons(source);
    await ensureLocalTools();
    await ensureBusybox();
    await ensureImages();
  });
  progress(`tempkube setup: everything present (${seconds(Date.now() - started)})`);
}

export interface VersionStatus { release: KubernetesRelease; installed: boolean; reason?: string; isDefault: boolean }

export async function versionStatuses(): Promise<VersionStatus[]> {
  const def = defaultRelease();
  return Promise.all(KUBERNETES_RELEASES.map(async (release) => {
    const check = await artifacts.kubernetes(release).verify();
    return { release, installed: check.ok, reason: check.ok ? undefined : check.reason, isDefault: release === def };
  }));
}
