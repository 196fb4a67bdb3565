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
      const [{ versionStatuses }, { plannedReleases }, { hostCgroupVersion }] = await Promise.all([
        import("../../setup/installer.js"),
        import("../../runtime/local/cluster-releases.js"),
        import("../../host/cgroup-version.js"),
      ]);
      const cgroup = hostCgroupVersion();
      const statuses = (await versionStatuses()).map((s) => {
        const plan = plannedReleases(s.release.version, cgroup)!;
        return { ...s, nodes: "refused" in plan ? { refused: plan.refused } : plan };
      });
      if (opts.output === "json") {
        process.stdout.write(
          `${JSON.stringify(
            statuses.map((s) => ({
              minor: s.release.minor,
              version: s.release.version,
              installed: s.installed,
              default: s.isDefault,
              hostCgroup: cgroup,
              // What the nodes of its clusters run on this host (README, "Which kubelet a cluster's nodes run").
              ...("refused" in s.nodes
                ? { kubeletVersion: null, kubeletReason: s.nodes.refused }
                : { kubeletVersion: s.nodes.kubelet.version, kubeletReason: s.nodes.reason }),
            })),
            null,
            2,
          )}\n`,
        );
        return;
      }
      const rows = [["MINOR", "VERSION", "INSTALLED", "DEFAULT", `KUBELET ON THIS HOST (cgroup ${cgroup})`]];
      const notes: string[] = [];
      for (const s of statuses) {
        let kubelet: string;
        if ("refused" in s.nodes) {
          kubelet = "none: cannot run here (below)";
          notes.push(`${s.release.minor}: ${s.nodes.refused}`);
        } else if (s.nodes.kubelet !== s.release) {
          const kubeletRelease = s.nodes.kubelet;
          const missing = !statuses.find((o) => o.release === kubeletRelease)?.installed;
          kubelet = `${kubeletRelease.version}${missing ? ", not installed" : ""} (below)`;
          notes.push(
            `${s.release.minor}: ${s.nodes.reason}${missing ? `; its clusters need: sudo bin/tempkube versions install ${kubeletRelease.minor}` : ""}`,
          );
        } else kubelet = `${s.release.version} (its own)`;
        rows.push([
          s.release.minor,
          s.release.version,
          s.installed ? "yes" : `no (${s.reason})`,
          s.isDefault ? "*" : "",
          kubelet,
        ]);
      }
      process.stdout.write(table(rows));
      for (const note of notes) process.stdout.write(`${note}\n`);
      if (statuses.some((s) => !s.installed))
        process.stdout.write(
          "A create naming a version that is not installed is refused (409); install one with: sudo bin/tempkube versions install <minor>\n",
        );
    });

  versions
    .command("install <minor...>")
    .description("Install Kubernetes versions (built from source through the Go module proxy)")
    .action(async (minors: string[]) => {
      const releases = resolveReleases(minors);
      const [{ ensureKubernetes }, { GoSourceBuild }] = await Promise.all([
        import("../../setup/installer.js"),
        import("../../setup/go-source-build.js"),
      ]);
      // Each release's build takes its own lock: a `setup` building the same one is waited for.
      for (const release of releases) await ensureKubernetes(release, new GoSourceBuild());
    });
}
