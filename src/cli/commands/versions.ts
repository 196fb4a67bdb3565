import type { Command } from "commander";
import { resolveReleases } from "../releases.js";
import { table } from "../output.js";

export function registerVersions(program: Command): void {
  const versions = program
    .command("versions")
    .description("List the Kubernetes versions tempkube offers and which are installed")
    .option("-o, --output <format>", "table or json", "table")
    .addHelpText(
      "after",
      `
Examples:
  $ tempkube versions
  $ tempkube versions install 1.33`,
    )
    .action(async (opts: { output: string }) => {
      const { versionStatuses } = await import("../../setup/installer.js");
      const statuses = await versionStatuses();
      if (opts.output === "json") {
        process.stdout.write(
          `${JSON.stringify(
            statuses.map((s) => ({
              minor: s.release.minor,
              version: s.release.version,
              installed: s.installed,
              default: s.isDefault,
            })),
            null,
            2,
          )}\n`,
        );
        return;
      }
      const rows = [["MINOR", "VERSION", "INSTALLED", "DEFAULT"]];
      for (const s of statuses) {
        rows.push([
          s.release.minor,
          s.release.version,
          s.installed ? "yes" : `no (${s.reason})`,
          s.isDefault ? "*" : "",
        ]);
      }
      process.stdout.write(table(rows));
    });

  versions
    .command("install <minor...>")
    .description("Install Kubernetes versions (built from source through the Go module proxy)")
    .action(async (minors: string[]) => {
      const releases = resolveReleases(minors);
      const [{ ensureKubernetes, withSetupLock }, { GoSourceBuild }] = await Promise.all([
        import("../../setup/installer.js"),
        import("../../setup/go-source-build.js"),
      ]);
      await withSetupLock(async () => {
        for (const release of releases) await ensureKubernetes(release, new GoSourceBuild());
      });
    });
}
