import { createHash } from "node:crypto";
import { chmod, copyFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TempkubeError } from "../util/errors.js";
import { run } from "../util/exec.js";
import { progress } from "../util/log.js";
import type { BinarySource } from "./binary-source.js";
import type {
  AddonRelease,
  ContainerRuntimeRelease,
  KubernetesComponent,
  KubernetesRelease,
  ReleaseAsset,
} from "./catalogue.js";

/** Fetches one URL whole (a test passes its own). */
export type Fetcher = (url: string) => Promise<Buffer>;

/**
 * Official release binaries, each verified by SHA-256: Kubernetes's from dl.k8s.io against
 * the checksum published beside each binary; containerd's and runc's from their GitHub
 * releases against the checksum pinned in the catalogue (`releaseAssets`), and built from
 * source where none is pinned. The fast path on machines with internet; selected with
 * `tempkube setup --source release`. Add-ons (kine, CoreDNS, local-path-provisioner)
 * publish no matching static binaries for every version, so they are always built from
 * source.
 */
export class ReleaseDownload implements BinarySource {
  readonly name = "release" as const;
  constructor(
    private readonly baseUrl = "https://dl.k8s.io/release",
    private readonly fallback?: BinarySource,
    private readonly fetchUrl: Fetcher = download,
    private readonly arch = goArch(),
  ) {}

  async kubernetes(
    release: KubernetesRelease,
    components: readonly KubernetesComponent[],
    outDir: string,
    logFile: string,
  ): Promise<void> {
    for (const component of components) {
      const url = `${this.baseUrl}/${release.version}/bin/linux/${this.arch}/${component}`;
      const [binary, checksum] = await Promise.all([this.fetchUrl(url), this.fetchUrl(`${url}.sha256`)]);
      verifySha256(url, binary, checksum.toString().trim().split(/\s+/)[0], logFile);
      await writeFile(join(outDir, component), binary);
      await chmod(join(outDir, component), 0o755);
    }
  }

  async addon(addon: AddonRelease, outDir: string, logFile: string): Promise<void> {
    if (!this.fallback) throw new TempkubeError("setup", `no release download for ${addon.name}; build it from source`);
    await this.fallback.addon(addon, outDir, logFile);
  }

  /** The release's pinned asset for this host, or its build when none is pinned. */
  async containerRuntime(release: ContainerRuntimeRelease, outDir: string, logFile: string): Promise<void> {
    const choice = pinnedReleaseAsset(release, this.arch);
    if (!choice.ok) {
      if (!this.fallback)
        throw new TempkubeError(
          "setup",
          `no release download for ${release.name} ${release.version}: ${choice.reason}; build it from source`,
        );
      progress(`    ${release.name} ${release.version}: ${choice.reason}; building it from source`);
      await this.fallback.containerRuntime(release, outDir, logFile);
      return;
    }
    const data = await this.fetchUrl(choice.asset.url);
    verifySha256(choice.asset.url, data, choice.asset.sha256, logFile);
    await installReleaseAsset(release, choice.asset, data, outDir, logFile);
  }
}

export type AssetChoice = { ok: true; asset: ReleaseAsset & { sha256: string } } | { ok: false; reason: string };

/** The asset of `release` for `arch` whose checksum is pinned, or why there is none. */
export function pinnedReleaseAsset(release: ContainerRuntimeRelease, arch: string): AssetChoice {
  const asset = release.releaseAssets.find((a) => a.arch === arch);
  if (!asset) return { ok: false, reason: `no release asset for linux/${arch} in the catalogue` };
  if (asset.sha256 === null)
    return { ok: false, reason: `no published SHA-256 pinned for ${asset.url.split("/").pop()}` };
  if (!/^[0-9a-f]{64}$/.test(asset.sha256))
    return { ok: false, reason: `the pinned SHA-256 of ${asset.url} is not 64 hex digits` };
  return { ok: true, asset: { ...asset, sha256: asset.sha256 } };
}

function verifySha256(url: string, data: Buffer, expected: string, logFile: string): void {
  const actual = createHash("sha256").update(data).digest("hex");
  if (actual !== expected) {
    throw new TempkubeError(
      "setup",
      `checksum mismatch for ${url}: expected ${expected}, got ${actual} (log: ${logFile})`,
    );
  }
}

/** Writes every command of the release into `outDir` as an executable named by its `binary`. */
async function installReleaseAsset(
  release: ContainerRuntimeRelease,
  asset: ReleaseAsset,
  data: Buffer,
  outDir: string,
  logFile: string,
): Promise<void> {
  if (asset.format === "binary") {
    if (release.commands.length !== 1)
      throw new TempkubeError(
        "setup",
        `${asset.url} is one binary, but ${release.name} has ${release.commands.length} commands`,
      );
    const target = join(outDir, release.commands[0].binary);
    await writeFile(target, data);
    await chmod(target, 0o755);
    return;
  }
  // Unpacked outside outDir: everything in outDir becomes part of the artifact. Only the
  // named members are extracted, and tar fails naming any that is missing.
  const scratch = await mkdtemp(join(tmpdir(), `tempkube-${release.name}-`));
  try {
    const archive = join(scratch, "asset.tar.gz");
    await writeFile(archive, data);
    const members = release.commands.map((c) => `bin/${c.binary}`);
    await run("tar", ["-xzf", archive, "-C", scratch, "--no-same-owner", ...members], { logFile });
    for (const command of release.commands) {
      const target = join(outDir, command.binary);
      await copyFile(join(scratch, "bin", command.binary), target);
      await chmod(target, 0o755);
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

async function download(url: string): Promise<Buffer> {
  const res = await fetch(url);
  if (!res.ok) throw new TempkubeError("setup", `download of ${url} failed: HTTP ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}

function goArch(): string {
  return process.arch === "x64" ? "amd64" : process.arch;
}
