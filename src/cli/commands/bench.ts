import type { Command } from "commander";
import { benchLocal, formatReport } from "../../bench/local-bench.js";
import { median } from "../../bench/stats.js";
import { benchWarmPool, formatWarmPool } from "../../bench/warm-pool-bench.js";
import { TempkubeError } from "../../util/errors.js";
import { progress } from "../../util/log.js";

export function registerBench(program: Command): void {
  program
    .command("bench")
    .description(
      "Measure cold create→ready, stop→start→ready and idle memory of real clusters, against a bare apiserver baseline",
    )
    .option("--runs <n>", "clusters to create, one after another", "5")
    .option("--idle <seconds>", "how long the first cluster idles before its memory is read", "20")
    .option("--no-warm-pool", "skip the warm-pool figure (create through the server from a booted pool)")
    .option("-o, --output <format>", "text or json", "text")
    .addHelpText(
      "after",
      "\nFigures are medians; the machine is shared and noisy, so compare the ratios.\nExample:\n  $ sudo bin/tempkube bench --runs 5",
    )
    .action(async (opts: { runs: string; idle: string; output: string; warmPool: boolean }) => {
      const runs = Number(opts.runs);
      if (!Number.isInteger(runs) || runs < 1)
        throw new TempkubeError("invalid-input", `--runs must be a positive integer, not "${opts.runs}"`);
      const report = await benchLocal({ runs, idleSeconds: Number(opts.idle), log: progress });
      const warmPool = opts.warmPool ? await benchWarmPool(runs, progress) : undefined;
      if (opts.output === "json")
        return void process.stdout.write(`${JSON.stringify({ ...report, warmPool }, null, 2)}\n`);
      process.stdout.write(
        formatReport(report) + (warmPool ? formatWarmPool(warmPool, median(report.baselineReadyMs)) : ""),
      );
    });
}
