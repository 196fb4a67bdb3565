import type { AddonRelease, ContainerRuntimeRelease, KubernetesComponent, KubernetesRelease } from "./catalogue.js";

/**
 * Where upstream binaries come from. Two implementations of the same step:
 * `GoSourceBuild` (the only path on machines limited to the Go module proxy) and
 * `ReleaseDownload` (official release binaries verified by checksum, for machines with
 * internet). Both write plain executables named after the component into `outDir`.
 */
export interface BinarySource {
  readonly name: "source" | "release";
  kubernetes(
    release: KubernetesRelease,
    components: readonly KubernetesComponent[],
    outDir: string,
    logFile: string,
  ): Promise<void>;
  addon(addon: AddonRelease, outDir: string, logFile: string): Promise<void>;
  /** containerd 2.x or runc: every command of the release, named by its `binary`. */
  containerRuntime(release: ContainerRuntimeRelease, outDir: string, logFile: string): Promise<void>;
}
