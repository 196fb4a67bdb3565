import { existsSync } from "node:fs";
import { readdir, readFile, rm } from "node:fs/promises";
import { basename, join } from "node:path";
import { run } from "../util/exec.js";
import { TempkubeError } from "../util/errors.js";
import { cacheDir } from "../util/paths.js";
import { ArtifactDir } from "./artifact-dir.js";
import { addonBinary } from "./artifact-paths.js";
import { ADDONS, type AddonRelease } from "./catalogue.js";
import { goEnv } from "./go-source-build.js";
import { writeImageArchive, type ImageSpec, type LayerEntry } from "./image-archive.js";
import { BASE_DIRS, ETC_FILES } from "./image-recipes.js";
import { ensureArtifact } from "./installer.js";
import { sharedLibraryClosure } from "./shared-libraries.js";

/**
 * Images that tests load into a cluster, not part of every cluster (catalogue IMAGES): built
 * from source on first use and cached like the rest, each under its own lock so a test does
 * not wait for a whole `tempkube setup`.
 */

/**
 * k8s.io/sample-apiserver, the extension apiserver upstream's conformance test
 * `[sig-api-machinery] Aggregator Should be able to support the 1.17 Sample API Server
 * using the current Aggregator` deploys. Its published module has no replace directives, so
 * `go install` takes it from the module proxy as it is. An older one than the newest
 * cluster on purpose: upstream runs an old sample server against the current aggregator
 * (that test's point), so v0.34 serves every offered minor from 1.34 on, whereas a newer one
 * would watch admission APIs an older apiserver does not serve.
 */
export const SAMPLE_APISERVER = { goPackage: "k8s.io/sample-apiserver", version: "v0.34.4" } as const;

export const TEST_IMAGES = {
  /**
   * Named as upstream's test/utils/image/manifest.go names it in v1.37.2 (`configs[APIServer]
   * = Config{list.PromoterE2eRegistry, "sample-apiserver", "1.29.2"}`), so the conformance
   * suite's pod finds it once loaded (imagePullPolicy IfNotPresent); /sample-apiserver, as
   * upstream's test/images/sample-apiserver/Dockerfile lays it out.
   */
  sampleApiServer: "registry.k8s.io/e2e-test-images/sample-apiserver:1.29.2",
  /** kine as an etcd for an extension apiserver (its pod's own, on loopback). */
  kine: `tempkube.local/kine:${kineRelease().version}`,
} as const;
export type TestImageKey = keyof typeof TEST_IMAGES;

function kineRelease(): AddonRelease {
  return ADDONS.find((a) => a.name === "kine")!;
}

function testImageRoot(key: TestImageKey): string {
  return join(cacheDir(), "test-images", TEST_IMAGES[key].replace(/[/:]/g, "_"));
}

/** What the image holds, recorded as its cache version: another version is rebuilt. */
function contentVersion(key: TestImageKey): string {
  return key === "sampleApiServer" ? SAMPLE_APISERVER.version : kineRelease().version;
}

/** The image archive (docker-archive, for `load-image`), built first if it is not cached. */
export async function ensureTestImage(key: TestImageKey): Promise<string> {
  const dir = new ArtifactDir(testImageRoot(key));
  if (key === "kine" && !existsSync(addonBinary("kine")))
    throw new TempkubeError(
      "runtime",
      `${TEST_IMAGES.kine} needs kine's binary (${addonBinary("kine")}): run tempkube setup`,
    );
  // ensureArtifact takes the artifact's own lock (<artifact>.lock): one build at a time.
  await ensureArtifact(
    `test image ${TEST_IMAGES[key]}`,
    dir,
    { name: `test-image-${key}`, version: contentVersion(key), source: "source" },
    async (out, logFile) => {
      const spec = await RECIPES[key](out, logFile);
      await writeImageArchive(spec, join(out, "image.tar"));
      // Only the archive is the artifact; the build's binary goes.
      for (const f of await readdir(out))
        if (f !== "image.tar") await rm(join(out, f), { recursive: true, force: true });
    },
  );
  return dir.path("image.tar");
}

const RECIPES: Record<TestImageKey, (scratchDir: string, logFile: string) => Promise<ImageSpec>> = {
  async sampleApiServer(scratchDir, logFile) {
    const pkg = `${SAMPLE_APISERVER.goPackage}@${SAMPLE_APISERVER.version}`;
    await run("go", ["install", "-trimpath", "-ldflags", "-s -w", pkg], {
      env: { ...goEnv(false), GOBIN: scratchDir, GOFLAGS: "-buildvcs=false" },
      logFile,
      cwd: scratchDir,
    });
    return {
      reference: TEST_IMAGES.sampleApiServer,
      entries: [
        ...BASE_DIRS,
        ...ETC_FILES,
        {
          type: "file",
          path: "sample-apiserver",
          content: await readFile(join(scratchDir, "sample-apiserver")),
          mode: 0o755,
        },
      ],
      entrypoint: ["/sample-apiserver"],
    };
  },

  /** kine needs cgo (SQLite): its shared libraries go in /lib, with lib64 -> lib for the loader's path. */
  async kine(_scratchDir, logFile) {
    const binary = addonBinary("kine");
    const libraries = (await sharedLibraryClosure([binary], logFile)).filter((f) => f !== binary);
    const libs: LayerEntry[] = [];
    for (const lib of libraries)
      libs.push({ type: "file", path: `lib/${basename(lib)}`, content: await readFile(lib), mode: 0o755 });
    return {
      reference: TEST_IMAGES.kine,
      entries: [
        ...BASE_DIRS,
        ...ETC_FILES,
        { type: "dir", path: "lib" },
        { type: "symlink", path: "lib64", target: "lib" },
        ...libs,
        { type: "dir", path: "var/lib" },
        { type: "dir", path: "var/lib/kine" },
        { type: "file", path: "kine", content: await readFile(binary), mode: 0o755 },
      ],
      entrypoint: ["/kine"],
    };
  },
};
