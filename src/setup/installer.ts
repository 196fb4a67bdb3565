import { appendFile, mkdir, readdir, rm } from "node:fs/promises";
import { run } from "../util/exec.js";
import { goEnv } from "./go-source-build.js";
import { join } from "node:path";
import { progress, seconds } from "../util/log.js";
import { withFileLock } from "../util/lock.js";
import { cacheDir, logsDir } from "../util/paths.js";
import { TempkubeError } from "../util/errors.js";
import { ArtifactDir, type ArtifactManifest } from "./artifact-dir.js";
import { buildBusybox } from "./busybox-build.js";
import type { BinarySource } from "./binary-source.js";
import {
  ADDONS,
  BUSYBOX,
  CONTAINER_RUNTIME,
  IMAGES,
  KUBERNETES_COMPONENTS,
  KUBERNETES_RELEASES,
  defaultRelease,
  imageContentVersion,
  type AddonRelease,
  type ContainerRuntimeRelease,
  type ImageKey,
  type KubernetesComponent,
  type KubernetesRelease,
} from "./catalogue.js";
import {
  addonBinary,
  artifactRoots,
  busyboxBinary,
  LOCAL_TOOLS,
  localToolDir,
  localToolVersion,
  type LocalTool,
} from "./artifact-paths.js";
import { writeImageArchive } from "./image-archive.js";
import { IMAGE_RECIPES } from "./image-recipes.js";

/** The cache's artifacts, as directories that verify and produce themselves (their paths: artifact-paths.ts). */
export const artifacts = {
  kubernetes: (r: KubernetesRelease) => new ArtifactDir(artifactRoots.kubernetes(r)),
  addon: (a: AddonRelease) => new ArtifactDir(artifactRoots.addon(a)),
  image: (key: ImageKey) => new ArtifactDir(artifactRoots.image(key)),
  busybox: () => new ArtifactDir(artifactRoots.busybox()),
  containerRuntime: (r: ContainerRuntimeRelease) => new ArtifactDir(artifactRoots.containerRuntime(r)),
};

export {
  addonBinary,
  busyboxBinary,
  containerRuntimeBinary,
  imageArchive,
  kubernetesBinary,
  LOCAL_TOOLS,
  localToolBinary,
  localToolDir,
  type LocalTool,
} from "./artifact-paths.js";

/**
 * Ensures one artifact exists and is intact; builds it (with progress and a log file)
 * otherwise. One build per artifact at a time, host-wide: the build takes `<artifact>.lock`
 * (pid inside; a dead owner's lock is taken over), so a `versions install` and a `setup`
 * building the same artifact do not write the same scratch directory at once; the second
 * waits, then finds the artifact built. Builds of different artifacts run side by side.
 * A failed build's error names its full log.
 */
export async function ensureArtifact(
  label: string,
  dir: ArtifactDir,
  meta: { name: string; version: string; source: string },
  build: (outDir: string, logFile: string) => Promise<void>,
): Promise<ArtifactManifest> {
  const started = Date.now();
  const check = await dir.verify(meta.version);
  if (check.ok) {
    progress(`  ✓ ${label}: cached (checked in ${seconds(Date.now() - started)})`);
    return check.manifest;
  }
  return withFileLock(
    `${dir.root}.lock`,
    `the build of ${label}`,
    async () => {
      // Built by the process this one waited for: nothing left to do.
      const again = await dir.verify(meta.version);
      if (again.ok) {
        progress(`  ✓ ${label}: built by another process meanwhile (${seconds(Date.now() - started)})`);
        return again.manifest;
      }
      await mkdir(logsDir(), { recursive: true });
      const logFile = join(logsDir(), `${meta.name}-${meta.version}.log`);
      progress(
        `  … ${label}: ${again.reason === "not built" ? "building" : `rebuilding (${again.reason})`}; log: ${logFile}`,
      );
      try {
        const manifest = await dir.produce(meta, (out) => build(out, logFile));
        progress(`  ✓ ${label}: built in ${seconds(Date.now() - started)}`);
        return manifest;
      } catch (err) {
        throw buildFailure(label, logFile, err);
      }
    },
    (owner) => `  … waiting for another build of ${label} (pid ${owner})`,
  );
}

/**
 * The error of a failed build, naming the artifact and where its full log is. A child
 * process's error already says "full log: …" (exec.ts); a failure of tempkube's own code
 * (a download, an image archive) says it here, and is appended to the log as well.
 */
function buildFailure(label: string, logFile: string, err: unknown): TempkubeError {
  const message = err instanceof Error ? err.message : String(err);
  const type = err instanceof TempkubeError ? err.type : "setup";
  if (message.includes(logFile)) return new TempkubeError(type, `building ${label} failed: ${message}`, { cause: err });
  void appendFile(logFile, `tempkube: building ${label} failed: ${message}\n`).catch(() => undefined);
  return new TempkubeError(type, `building ${label} failed: ${message}\nfull log: ${logFile}`, { cause: err });
}

export async function ensureKubernetes(release: KubernetesRelease, source: BinarySource): Promise<ArtifactManifest> {
  return ensureArtifact(
    `kubernetes ${release.version} (${KUBERNETES_COMPONENTS.join(", ")})`,
    artifacts.kubernetes(release),
    { name: "kubernetes", version: release.version, source: source.name },
    (out, log) => source.kubernetes(release, KUBERNETES_COMPONENTS, out, log),
  );
}

export async function ensureAddons(source: BinarySource): Promise<void> {
  for (const addon of ADDONS) {
    await ensureArtifact(
      `${addon.name} ${addon.version}`,
      artifacts.addon(addon),
      { name: addon.name, version: addon.version, source: source.name },
      (out, log) => source.addon(addon, out, log),
    );
  }
}

/** containerd 2.x and runc from the module proxy: every node runs them (catalogue CONTAINER_RUNTIME). */
export async function ensureContainerRuntime(source: BinarySource): Promise<void> {
  for (const release of CONTAINER_RUNTIME) {
    await ensureArtifact(
      `${release.name} ${release.version} (${release.commands.map((c) => c.binary).join(", ")})`,
      artifacts.containerRuntime(release),
      { name: release.name, version: release.version, source: source.name },
      (out, log) => source.containerRuntime(release, out, log),
    );
  }
}

/** BusyBox from its upstream source (Debian's orig tarball), for the busybox:1.35 image. */
export async function ensureBusybox(): Promise<void> {
  await ensureArtifact(
    `busybox ${BUSYBOX.version} (${BUSYBOX.variant}, the official image's configuration)`,
    artifacts.busybox(),
    { name: "busybox", version: `${BUSYBOX.version}-${BUSYBOX.variant}`, source: "source" },
    (out, log) => buildBusybox(out, log),
  );
}

export async function ensureImages(): Promise<void> {
  for (const key of Object.keys(IMAGES) as ImageKey[]) {
    const reference = IMAGES[key];
    await ensureArtifact(
      `image ${reference}`,
      artifacts.image(key),
      { name: `image-${key}`, version: imageContentVersion(key), source: "local" },
      async (out, logFile) => {
        const spec = await IMAGE_RECIPES[key]({
          addonBinary,
          busyboxBinary: busyboxBinary(),
          kubernetes: defaultRelease(),
          logFile,
          scratchDir: out,
        });
        await writeImageArchive(spec, join(out, "image.tar"));
        // Only the archive is the artifact; intermediate files (the pause binary) go.
        for (const f of await readdir(out))
          if (f !== "image.tar") await rm(join(out, f), { recursive: true, force: true });
      },
    );
  }
}

function localToolArtifact(tool: LocalTool): ArtifactDir {
  return new ArtifactDir(artifactRoots.localTool(tool));
}

export async function ensureLocalTools(): Promise<void> {
  for (const tool of LOCAL_TOOLS) {
    const version = localToolVersion(tool);
    await ensureArtifact(
      `${tool} (tools/${tool}, ${version})`,
      localToolArtifact(tool),
      { name: tool, version, source: "repository" },
      (out, log) =>
        run("go", ["build", "-trimpath", "-ldflags", "-s -w", "-o", join(out, tool), "."], {
          cwd: localToolDir(tool),
          env: { ...goEnv(false), GOFLAGS: "-buildvcs=false -mod=readonly" },
          logFile: log,
        }).then(() => undefined),
    );
  }
}

/** Everything a cluster of the given releases needs. Idempotent; a warm run takes seconds. */
export async function setupAll(releases: KubernetesRelease[], source: BinarySource): Promise<void> {
  const started = Date.now();
  progress(`tempkube setup: cache ${cacheDir()}`);
  // No lock around the whole: each artifact takes its own (ensureArtifact).
  for (const release of releases) await ensureKubernetes(release, source);
  await ensureAddons(source);
  await ensureContainerRuntime(source);
  await ensureLocalTools();
  await ensureBusybox();
  await ensureImages();
  progress(`tempkube setup: everything present (${seconds(Date.now() - started)})`);
}

export interface VersionStatus {
  release: KubernetesRelease;
  installed: boolean;
  reason?: string;
  isDefault: boolean;
}

export async function versionStatuses(): Promise<VersionStatus[]> {
  const def = defaultRelease();
  return Promise.all(
    KUBERNETES_RELEASES.map(async (release) => {
      const check = await artifacts.kubernetes(release).verify();
      return { release, installed: check.ok, reason: check.ok ? undefined : check.reason, isDefault: release === def };
    }),
  );
}
