import { createReadStream } from "node:fs";
import tar from "tar-stream";
import { TempkubeError } from "../../util/errors.js";

/**
 * The images an archive names, and where each goes in a registry. Archives come from
 * `docker save` / `podman save` (manifest.json with RepoTags) or from OCI tools such as
 * `ctr export` and `buildah push oci-archive:` (index.json, names in annotations).
 */
export interface ArchiveImage {
  /** What skopeo reads: `docker-archive:<file>:<tag>` or `oci-archive:<file>:<name>`. */
  source: string;
  /** The reference pods use, fully qualified (docker.io/library/app:1). */
  reference: string;
  /** Repository path and tag in the registry (library/app, 1). */
  repository: string;
  tag: string;
}

type DockerManifest = { RepoTags?: string[] | null }[];
type OciIndex = { manifests?: { annotations?: Record<string, string> }[] };

/**
 * Splits a reference as containerd resolves it: the first component is the registry when it
 * has a dot or a port or is "localhost", otherwise docker.io (with "library/" for one-part names).
 * The registry's own name is not part of the path: a host mirror serves every registry.
 */
export function parseReference(ref: string): { reference: string; repository: string; tag: string } {
  if (ref.includes("@"))
    throw new TempkubeError("invalid-input", `image name "${ref}" has a digest; name images in the archive by tag`);
  const slash = ref.indexOf("/");
  const first = slash < 0 ? "" : ref.slice(0, slash);
  const hasDomain = first.includes(".") || first.includes(":") || first === "localhost";
  const domain = hasDomain ? first : "docker.io";
  let rest = hasDomain ? ref.slice(slash + 1) : ref;
  const colon = rest.lastIndexOf(":");
  const tag = colon > 0 ? rest.slice(colon + 1) : "latest";
  rest = colon > 0 ? rest.slice(0, colon) : rest;
  const repository = domain === "docker.io" && !rest.includes("/") ? `library/${rest}` : rest;
  if (
    !/^[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*$/.test(repository) ||
    !/^[\w][\w.-]{0,127}$/.test(tag)
  ) {
    throw new TempkubeError("invalid-input", `"${ref}" is not a valid image name`);
  }
  return { reference: `${domain}/${repository}:${tag}`, repository, tag };
}

/** Reads manifest.json and index.json from the archive (only those entries are buffered). */
async function archiveIndexes(file: string): Promise<{ manifest?: DockerManifest; index?: OciIndex }> {
  const wanted = new Set(["manifest.json", "index.json"]);
  const found: Record<string, unknown> = {};
  const extract = tar.extract();
  extract.on("entry", (header, stream, next) => {
    const name = header.name.replace(/^\.\//, "");
    if (!wanted.has(name)) {
      stream.on("end", next);
      stream.resume();
      return;
    }
    const chunks: Buffer[] = [];
    stream.on("data", (c: unknown) => {
      chunks.push(c as Buffer);
    });
    stream.on("end", () => {
      try {
        found[name] = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        /* not JSON: ignored */
      }
      next();
    });
  });
  await new Promise<void>((resolve, reject) => {
    extract.on("finish", resolve);
    extract.on("error", (err) =>
      reject(new TempkubeError("invalid-input", `${file} is not a readable tar archive: ${err.message}`)),
    );
    createReadStream(file).on("error", reject).pipe(extract);
  });
  return {
    manifest: found["manifest.json"] as DockerManifest | undefined,
    index: found["index.json"] as OciIndex | undefined,
  };
}

export async function archiveImages(file: string): Promise<ArchiveImage[]> {
  const { manifest, index } = await archiveIndexes(file);
  const images: ArchiveImage[] = [];
  if (Array.isArray(manifest)) {
    for (const entry of manifest) {
      for (const tagged of entry.RepoTags ?? [])
        images.push({ source: `docker-archive:${file}:${tagged}`, ...parseReference(tagged) });
    }
  } else if (index && Array.isArray(index.manifests)) {
    for (const m of index.manifests) {
      const name = m.annotations?.["io.containerd.image.name"];
      const refName = m.annotations?.["org.opencontainers.image.ref.name"];
      // skopeo selects an OCI image by its ref.name; containerd also records the full name.
      if (refName) images.push({ source: `oci-archive:${file}:${refName}`, ...parseReference(name ?? refName) });
    }
  } else {
    throw new TempkubeError(
      "invalid-input",
      `${file} is neither a docker-archive (manifest.json) nor an OCI archive (index.json)`,
    );
  }
  if (images.length === 0) {
    throw new TempkubeError(
      "invalid-input",
      `${file} names no image (no RepoTags, no image names); save it with a name, e.g. docker save app:1 -o app.tar`,
    );
  }
  return images;
}
