import type { Command } from "commander";
import { TempkubeError } from "../../util/errors.js";
import { resolveReleases } from "../releases.js";

export function registerSetup(program: Command): void {
  program
    .command("setup")
    .description(
      "Build (or find cached) upstream Kubernetes, containerd and runc, kine, CoreDNS, local-path-provisioner and the cluster images",
    )
    .option("--version <minor...>", "Kubernetes versions to install (e.g. 1.34 1.33, or v1.34.4)", ["default"])
    .option(
      "--source <source>",
      "where binaries come from: source (Go module proxy) or release (dl.k8s.io, checksummed)",
      "source",
    )
    .addHelpText(
      "after",
      `
Examples:
  $ tempkube setup                  # the default Kubernetes version, add-ons and images
  $ tempkube setup --version 1.37 1.34  # install Kubernetes 1.37 and 1.34
  $ tempkube setup --source release # on a machine with internet: official binaries`,
    )
    .action(async (opts: { version: string[]; source: string }) => {
      if (opts.source !== "release" && opts.source !== "source") {
        throw new TempkubeError("invalid-input", `--source must be "source" or "release", not "${opts.source}"`);
      }
      const [{ GoSourceBuild }, { ReleaseDownload }, { setupAll }] = await Promise.all([
        import("../../setup/go-source-build.js"),
        import("../../setup/release-download.js"),
        import("../../setup/installer.js"),
      ]);
      const build = new GoSourceBuild();
      const source = opts.source === "release" ? new ReleaseDownload(undefined, build) : build;
      await setupAll(resolveReleases(opts.version), source);
    });
}
