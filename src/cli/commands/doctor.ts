import type { Command } from "commander";
import { EXIT } from "../exit-codes.js";

export function registerDoctor(program: Command): void {
  program
    .command("doctor")
    .description("Check that this host can run tempkube clusters; print each problem with the command that fixes it")
    .option("-o, --output <format>", "text or json", "text")
    .addHelpText(
      "after",
      `
Exit code 0 when nothing blocks, ${EXIT.hostProblem} when something does.
Example:
  $ sudo bin/tempkube doctor`,
    )
    .action(async (opts: { output: string }) => {
      const { runHostChecks } = await import("../../host/checks.js");
      const checks = await runHostChecks();
      const blocking = checks.filter((c) => !c.ok && c.blocking);
      if (opts.output === "json") {
        process.stdout.write(`${JSON.stringify(checks, null, 2)}\n`);
      } else {
        for (const c of checks) {
          const mark = c.ok ? "ok  " : c.blocking ? "FAIL" : "warn";
          process.stdout.write(`${mark}  ${c.name}: ${c.detail}\n`);
          if (!c.ok && c.fix) process.stdout.write(`      fix: ${c.fix}\n`);
        }
        process.stdout.write(
          blocking.length
            ? `\n${blocking.length} problem(s) block tempkube.\n`
            : "\nThis host can run tempkube clusters.\n",
        );
      }
      process.exitCode = blocking.length ? EXIT.hostProblem : EXIT.ok;
    });
}
