import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { run } from "../util/exec.js";
import type { BinarySource } from "./binary-source.js";
import { CONTAINER_RUNTIME, findRelease, type ContainerRuntimeRelease } from "./catalogue.js";
import { pinnedReleaseAsset, ReleaseDownload } from "./release-download.js";

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");
const catalogued = (name: string) => CONTAINER_RUNTIME.find((r) => r.name === name)!;

/** A fetcher serving fixed bodies and recording what was asked for. */
function fakeFetcher(bodies: Record<string, Buffer>) {
  const asked: string[] = [];
  const fetchUrl = async (url: string) => {
    asked.push(url);
    const body = bodies[url];
    if (!body) throw new Error(`unexpected download of ${url}`);
    return body;
  };
  return { asked, fetchUrl };
}

/** A build that only records that it ran. */
function fakeBuild() {
  const built: string[] = [];
  const source: BinarySource = {
    name: "source",
    kubernetes: async () => {
      throw new Error("not expected");
    },
    addon: async () => {
      throw new Error("not expected");
    },
    containerRuntime: async (release) => {
      built.push(`${release.name} ${release.version}`);
    },
  };
  return { built, source };
}

describe("release assets of containerd and runc", () => {
  it("catalogues the upstream release URL of each release's own version", () => {
    const containerd = catalogued("containerd");
    const runc = catalogued("runc");
    const plain = (v: string) => v.replace(/^v/, "");
    assert.deepEqual(
      containerd.releaseAssets.map((a) => [a.arch, a.url, a.format]),
      [
        [
          "amd64",
          `https://github.com/containerd/containerd/releases/download/${containerd.version}/containerd-${plain(containerd.version)}-linux-amd64.tar.gz`,
          "tar.gz",
        ],
      ],
    );
    assert.deepEqual(
      runc.releaseAssets.map((a) => [a.arch, a.url, a.format]),
      [["amd64", `https://github.com/opencontainers/runc/releases/download/${runc.version}/runc.amd64`, "binary"]],
    );
  });

  it("selects no asset without a pinned checksum, and says which", () => {
    // No published checksum of containerd 2.4.2's or runc 1.5.3's assets could be found
    // here; none is made up, so both are built.
    assert.deepEqual(pinnedReleaseAsset(catalogued("containerd"), "amd64"), {
      ok: false,
      reason: "no published SHA-256 pinned for containerd-2.4.2-linux-amd64.tar.gz",
    });
    assert.deepEqual(pinnedReleaseAsset(catalogued("runc"), "amd64"), {
      ok: false,
      reason: "no published SHA-256 pinned for runc.amd64",
    });
    assert.deepEqual(pinnedReleaseAsset(catalogued("runc"), "arm64"), {
      ok: false,
      reason: "no release asset for linux/arm64 in the catalogue",
    });
  });

  it("refuses a pin that is not a SHA-256", () => {
    const release = withAsset(catalogued("runc"), { sha256: "ABC" });
    const choice = pinnedReleaseAsset(release, "amd64");
    assert.equal(choice.ok, false);
    assert.match((choice as { reason: string }).reason, /not 64 hex digits/);
  });
});

function withAsset(release: ContainerRuntimeRelease, patch: { sha256: string | null }): ContainerRuntimeRelease {
  return { ...release, releaseAssets: release.releaseAssets.map((a) => ({ ...a, ...patch })) };
}

describe("ReleaseDownload for containerd and runc", () => {
  let root: string;
  let out: string;
  const log = () => join(root, "log");
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "tempkube-release-"));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });
  const freshOut = async (name: string) => {
    out = join(root, name);
    await mkdir(out);
    return out;
  };

  it("builds a release whose asset has no pinned checksum, downloading nothing", async () => {
    const { asked, fetchUrl } = fakeFetcher({});
    const { built, source } = fakeBuild();
    const dl = new ReleaseDownload(undefined, source, fetchUrl, "amd64");
    for (const release of CONTAINER_RUNTIME) await dl.containerRuntime(release, await freshOut(release.name), log());
    assert.deepEqual(built, ["containerd v2.4.2", "runc v1.5.3"]);
    assert.deepEqual(asked, []);
  });

  it("without a build to fall back on, fails naming why there is no download", async () => {
    const dl = new ReleaseDownload(undefined, undefined, fakeFetcher({}).fetchUrl, "amd64");
    await assert.rejects(
      dl.containerRuntime(catalogued("runc"), await freshOut("no-fallback"), log()),
      /no release download for runc v1\.5\.3: no published SHA-256 pinned for runc\.amd64/,
    );
  });

  it("installs a pinned single-binary asset as the release's command", async () => {
    const body = Buffer.from("#!/bin/sh\necho runc\n");
    const release = withAsset(catalogued("runc"), { sha256: sha256(body) });
    const url = release.releaseAssets[0].url;
    const { asked, fetchUrl } = fakeFetcher({ [url]: body });
    const { built, source } = fakeBuild();
    const dir = await freshOut("runc-pinned");
    await new ReleaseDownload(undefined, source, fetchUrl, "amd64").containerRuntime(release, dir, log());
    assert.deepEqual(asked, [url]);
    assert.deepEqual(built, []);
    assert.deepEqual(await readdir(dir), ["runc"]);
    assert.deepEqual(await readFile(join(dir, "runc")), body);
    assert.equal((await stat(join(dir, "runc"))).mode & 0o777, 0o755);
  });

  it("unpacks the release's commands, and only those, from a pinned tarball", async () => {
    const tree = join(root, "tree");
    await mkdir(join(tree, "bin"), { recursive: true });
    for (const bin of ["containerd", "containerd-shim-runc-v2", "containerd-stress", "ctr"])
      await writeFile(join(tree, "bin", bin), `binary ${bin}\n`);
    const tarball = join(root, "containerd.tar.gz");
    await run("tar", ["-czf", tarball, "-C", tree, "bin"]);
    const body = await readFile(tarball);
    const release = withAsset(catalogued("containerd"), { sha256: sha256(body) });
    const { fetchUrl } = fakeFetcher({ [release.releaseAssets[0].url]: body });
    const dir = await freshOut("containerd-pinned");
    await new ReleaseDownload(undefined, fakeBuild().source, fetchUrl, "amd64").containerRuntime(release, dir, log());
    assert.deepEqual((await readdir(dir)).sort(), ["containerd", "containerd-shim-runc-v2", "ctr"]);
    assert.equal(await readFile(join(dir, "ctr"), "utf8"), "binary ctr\n");
    for (const bin of await readdir(dir)) assert.equal((await stat(join(dir, bin))).mode & 0o777, 0o755, bin);
  });

  it("fails naming the member a tarball lacks", async () => {
    const tree = join(root, "short-tree");
    await mkdir(join(tree, "bin"), { recursive: true });
    await writeFile(join(tree, "bin", "containerd"), "x");
    const tarball = join(root, "short.tar.gz");
    await run("tar", ["-czf", tarball, "-C", tree, "bin"]);
    const body = await readFile(tarball);
    const release = withAsset(catalogued("containerd"), { sha256: sha256(body) });
    const { fetchUrl } = fakeFetcher({ [release.releaseAssets[0].url]: body });
    await assert.rejects(
      new ReleaseDownload(undefined, fakeBuild().source, fetchUrl, "amd64").containerRuntime(
        release,
        await freshOut("containerd-short"),
        log(),
      ),
      /bin\/containerd-shim-runc-v2/,
    );
  });

  it("rejects a download whose checksum differs from the pin and writes nothing", async () => {
    const release = withAsset(catalogued("runc"), { sha256: sha256(Buffer.from("what upstream published")) });
    const url = release.releaseAssets[0].url;
    const { fetchUrl } = fakeFetcher({ [url]: Buffer.from("something else") });
    const dir = await freshOut("runc-mismatch");
    await assert.rejects(
      new ReleaseDownload(undefined, fakeBuild().source, fetchUrl, "amd64").containerRuntime(release, dir, log()),
      new RegExp(`checksum mismatch for ${url.replace(/[.]/g, "\\.")}`),
    );
    assert.deepEqual(await readdir(dir), []);
  });
});

describe("ReleaseDownload for Kubernetes", () => {
  it("fetches each component and its published checksum from dl.k8s.io's layout", async () => {
    const release = findRelease("1.37")!;
    const body = Buffer.from("kubectl");
    const url = `https://dl.k8s.io/release/${release.version}/bin/linux/amd64/kubectl`;
    const { asked, fetchUrl } = fakeFetcher({ [url]: body, [`${url}.sha256`]: Buffer.from(`${sha256(body)}\n`) });
    const dir = await mkdtemp(join(tmpdir(), "tempkube-release-k8s-"));
    try {
      await new ReleaseDownload(undefined, undefined, fetchUrl, "amd64").kubernetes(release, ["kubectl"], dir, "log");
      assert.deepEqual(asked.sort(), [url, `${url}.sha256`]);
      assert.deepEqual(await readFile(join(dir, "kubectl")), body);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
