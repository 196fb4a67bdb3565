import type { Command } from "commander";
import { benchLocal, formatReport } from "../../bench/local-bench.js";
import { median } from "../../bench/stats.js";
import { benchWarmPool, formatWarmPool } from "../../bench/warm-pool-bench.js";
import { benchGateway, formatGateway } from "../../bench/gateway-bench.js";
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
    .option("--no-gateway", "skip the gateway figures (request latency through it vs. direct; wake on connect)")
    .option("--requests <n>", "GET /version requests each way for the gateway's latency", "200")
    .option("-o, --output <format>", "text or json", "text")
    .addHelpText(
      "after",
      "\nFigures are medians; the machine is shared and noisy, so compare the ratios.\nExample:\n  $ sudo bin/tempkube bench --runs 5",
    )
    .action(
      async (opts: {
        runs: string;
        idle: string;
        output: string;
        warmPool: boolean;
        gateway: boolean;
        requests: string;
      }) => {
        const runs = Number(opts.runs);
        if (!Number.isInteger(runs) || runs < 1)
          throw new TempkubeError("invalid-input", `--runs must be a positive integer, not "${opts.runs}"`);
        const report = await benchLocal({ runs, idleSeconds: Number(opts.idle), log: progress });
        const requests = Number(opts.requests);
        if (!Number.isInteger(requests) || requests < 1)
          throw new TempkubeError("invalid-input", `--requests must be a positive integer, not "${opts.requests}"`);
        const warmPool = opts.warmPool ? await benchWarmPool(runs, progress) : undefined;
        const gateway = opts.gateway ? await benchGateway(requests, runs, progress) : undefined;
        if (opts.output === "json")
          return void process.stdout.write(`${JSON.stringify({ ...report, warmPool, gateway }, null, 2)}\n`);
        const baseline = median(report.baselineReadyMs);
        process.stdout.write(
          formatReport(report) +
            (warmPool ? formatWarmPool(warmPool, baseline) : "") +
            (gateway ? formatGateway(gateway, baseline) : ""),
        );
      },
    );
}
