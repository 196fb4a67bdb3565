import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";

/**
 * One cached artifact (a set of files, e.g. the binaries of a Kubernetes release).
 * It is produced in a temporary directory and renamed into place with its manifest
 * written last, so a half-made build is never mistaken for a finished one; `verify`
 * re-hashes every file so corruption after the fact is detected too.
 */
export interface ArtifactManifest {
  name: string;
  version: string;
  source: string;
  builtAt: string;
  buildSeconds: number;
  files: Record<string, { size: number; sha256: string }>;
}

export type Verification = { ok: true; manifest: ArtifactManifest } | { ok: false; reason: string };

const MANIFEST = "manifest.json";

export class ArtifactDir {
  constructor(readonly root: string) {}

  path(file: string): string {
    return join(this.root, file);
  }

  /** `version`, when given, must be the one recorded: an artifact built from other inputs is stale. */
  async verify(version?: string): Promise<Verification> {
    let manifest: ArtifactManifest;
    try {
      manifest = JSON.parse(await readFile(this.path(MANIFEST), "utf8")) as ArtifactManifest;
    } catch {
      return { ok: false, reason: "not built" };
    }
    if (version !== undefined && manifest.version !== version) {
      return { ok: false, reason: `built as ${manifest.version}, wanted ${version}` };
    }
    for (const [file, expected] of Object.entries(manifest.files)) {
      const st = await stat(this.path(file)).catch(() => undefined);
      if (!st) return { ok: false, reason: `${file} is missing` };
      if (st.size !== expected.size)
        return { ok: false, reason: `${file} has size ${st.size}, expected ${expected.size}` };
      if ((await sha256File(this.path(file))) !== expected.sha256)
        return { ok: false, reason: `${file} is corrupt (checksum differs)` };
    }
    return { ok: true, manifest };
  }

  /** Builds into a scratch directory, records checksums, then moves the result into place. */
  async produce(
    meta: { name: string; version: string; source: string },
    build: (dir: string) => Promise<void>,
  ): Promise<ArtifactManifest> {
    const scratch = `${this.root}.partial`;
    await rm(scratch, { recursive: true, force: true });
    await mkdir(scratch, { recursive: true });
    const started = Date.now();
    try {
      await build(scratch);
      const files: ArtifactManifest["files"] = {};
      for (const file of (await readdir(scratch)).sort()) {
        const st = await stat(join(scratch, file));
        if (st.isFile()) files[file] = { size: st.size, sha256: await sha256File(join(scratch, file)) };
      }
      const manifest: ArtifactManifest = {
        ...meta,
        builtAt: new Date().toISOString(),
        buildSeconds: Math.round((Date.now() - started) / 100) / 10,
        files,
      };
      await rm(this.root, { recursive: true, force: true });
      await rename(scratch, this.root);
      await writeFile(`${this.path(MANIFEST)}.tmp`, JSON.stringify(manifest, null, 2));
      await rename(`${this.path(MANIFEST)}.tmp`, this.path(MANIFEST));
      return manifest;
    } catch (e) {
      await rm(scratch, { recursive: true, force: true });
      throw e;
    }
  }
}

export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash("sha256");
    createReadStream(path)
      .on("data", (c) => hash.update(c))
      .on("error", reject)
      .on("end", () => resolve(hash.digest("hex")));
  });
}
