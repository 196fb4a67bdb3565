import { createHash } from "node:crypto";
import { chmod, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { TempkubeError } from "../util/errors.js";
import type { BinarySource } from "./binary-source.js";
import type { AddonRelease, ContainerRuntimeRelease, KubernetesComponent, KubernetesRelease } from "./catalogue.js";

/**
 * Official release binaries from dl.k8s.io, each verified against its published SHA-256.
 * The fast path on machines with internet; selected with `tempkube setup --source release`.
 * Add-ons (kine, CoreDNS, local-path-provisioner) publish no matching static binaries
 * for every version, so they are always built from source.
 */
export class ReleaseDownload implements BinarySource {
  readonly name = "release" as const;
  constructor(
    private readonly baseUrl = "https://dl.k8s.io/release",
    private readonly fallback?: BinarySource,
  ) {}

  async kubernetes(
    release: KubernetesRelease,
    components: readonly KubernetesComponent[],
    outDir: string,
    logFile: string,
  ): Promise<void> {
    for (const component of components) {
      const url = `${this.baseUrl}/${release.version}/bin/linux/${goArch()}/${component}`;
      const [binary, checksum] = await Promise.all([download(url), download(`${url}.sha256`)]);
      const expected = checksum.toString().trim().split(/\s+/)[0];
      const actual = createHash("sha256").update(binary).digest("hex");
      if (actual !== expected) {
        throw new TempkubeError(
          "setup",
          `checksum mismatch for ${url}: expected ${expected}, got ${actual} (log: ${logFile})`,
        );
      }
      await writeFile(join(outDir, component), binary);
      await chmod(join(outDir, component), 0o755);
    }
  }

  async addon(addon: AddonRelease, outDir: string, logFile: string): Promise<void> {
    if (!this.fallback) throw new TempkubeError("setup", `no release download for ${addon.name}; build it from source`);
    await this.fallback.addon(addon, outDir, logFile);
  }

  /** containerd's and runc's GitHub release assets are not fetched yet: built from source like the add-ons. */
  async containerRuntime(release: ContainerRuntimeRelease, outDir: string, logFile: string): Promise<void> {
    if (!this.fallback)
      throw new TempkubeError("setup", `no release download for ${release.name}; build it from source`);
    await this.fallback.containerRuntime(release, outDir, logFile);
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
