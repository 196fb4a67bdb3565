import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";

/**
 * Writes single-layer images as docker-archive tarballs (the `docker save` format),
 * which `ctr images import` reads. Everything is built in-process, with fixed mtimes,
 * so the same inputs give the same image digest on every machine.
 */
export type LayerEntry =
  | { type: "file"; path: string; content: Buffer; mode?: number }
  | { type: "dir"; path: string; mode?: number; uid?: number; gid?: number }
  | { type: "symlink"; path: string; target: string };

export interface ImageSpec {
  /** Fully qualified reference, e.g. docker.io/library/busybox:1.35. */
  reference: string;
  entries: LayerEntry[];
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  workingDir?: string;
  /** The user the image runs as (a uid, e.g. "1234"), as a Dockerfile's USER sets it. */
  user?: string;
}

const EPOCH = new Date(0);

export async function buildLayer(entries: LayerEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on("data", (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const done = new Promise<void>((resolve, reject) => {
    pack.on("end", resolve);
    pack.on("error", reject);
  });
  const sorted = [...entries].sort((a, b) => a.path.localeCompare(b.path));
  for (const e of sorted) {
    const name = e.path.replace(/^\/+/, "");
    const base = { name, mtime: EPOCH, uid: 0, gid: 0, uname: "root", gname: "root" };
    // Owners other than root go by number only (the name would say root).
    if (e.type === "dir" && (e.uid || e.gid))
      pack.entry({
        ...base,
        type: "directory",
        mode: e.mode ?? 0o755,
        uid: e.uid ?? 0,
        gid: e.gid ?? 0,
        uname: "",
        gname: "",
      });
    else if (e.type === "dir") pack.entry({ ...base, type: "directory", mode: e.mode ?? 0o755 });
    else if (e.type === "symlink") pack.entry({ ...base, type: "symlink", linkname: e.target, mode: 0o777 });
    else pack.entry({ ...base, type: "file", mode: e.mode ?? 0o644 }, e.content);
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export async function writeImageArchive(spec: ImageSpec, outFile: string): Promise<{ configDigest: string }> {
  const layer = await buildLayer(spec.entries);
  const layerDigest = sha256(layer);
  const config = Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      created: EPOCH.toISOString(),
      config: {
        Env: spec.env ?? ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        Entrypoint: spec.entrypoint ?? null,
        Cmd: spec.cmd ?? null,
        WorkingDir: spec.workingDir ?? "/",
        ...(spec.user === undefined ? {} : { User: spec.user }),
      },
      rootfs: { type: "layers", diff_ids: [`sha256:${layerDigest}`] },
      history: [{ created: EPOCH.toISOString(), created_by: "tempkube setup" }],
    }),
  );
  const configDigest = sha256(config);
  const manifest = Buffer.from(
    JSON.stringify([
      { Config: `${configDigest}.json`, RepoTags: [spec.reference], Layers: [`${layerDigest}/layer.tar`] },
    ]),
  );
  const pack = tar.pack();
  const base = { mtime: EPOCH, uid: 0, gid: 0, mode: 0o644 };
  pack.entry({ ...base, name: `${layerDigest}/`, type: "directory", mode: 0o755 });
  pack.entry({ ...base, name: `${layerDigest}/layer.tar` }, layer);
  pack.entry({ ...base, name: `${configDigest}.json` }, config);
  pack.entry({ ...base, name: "manifest.json" }, manifest);
  pack.finalize();
  await pipeline(pack, createWriteStream(outFile));
  return { configDigest: `sha256:${configDigest}` };
}

function sha256(b: Buffer): string {
  return createHash("sha256").update(b).digest("hex");
}
