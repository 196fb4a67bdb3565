import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import type { Command } from "commander";
import { defaultRelease } from "../../setup/catalogue.js";
import { TempkubeError } from "../../util/errors.js";

export function registerKubectl(program: Command): void {
  program
    .command("kubectl")
    .description("Run the kubectl that matches the default Kubernetes version (all arguments pass through)")
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument("[args...]")
    .addHelpText(
      "after",
      `
Examples:
  $ tempkube kubectl version --client
  $ tempkube kubectl --kubeconfig ./kubeconfig get nodes`,
    )
    .action(async (args: string[]) => {
      const { kubernetesBinary } = await import("../../setup/installer.js");
      const release = defaultRelease();
      const binary = kubernetesBinary(release, "kubectl");
      if (!existsSync(binary)) {
        throw new TempkubeError("setup", `kubectl ${release.version} is not installed; run: bin/tempkube setup`);
      }
      const child = spawn(binary, args, { stdio: "inherit" });
      const code = await new Promise<number>((resolve) => {
        child.on("close", (c, signal) => resolve(c ?? (signal ? 128 + 15 : 1)));
      });
      process.exitCode = code;
    });
}
