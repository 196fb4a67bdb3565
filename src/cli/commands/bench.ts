import type { Command } from "commander";
import { TempkubeError } from "../../util/errors.js";
import { progress } from "../../util/progress.js";

function positive(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1)
    throw new TempkubeError("invalid-input", `${flag} must be a positive integer, not "${text}"`);
  return n;
}

export function registerBench(program: Command): void {
  program
    .command("bench")
    .description(
      "Measure cold create→ready, stop→start→ready and idle memory of real clusters, against a bare apiserver baseline",
    )
    .option("--runs <n>", "clusters to create, one after another", "5")
    .option(
      "--idle <seconds>",
      "how long the first cluster idles before its memory is read (its CPU is measured over the second half)",
      "20",
    )
    .option("--no-warm-pool", "skip the warm-pool figure (create through the server from a booted pool)")
    .option("--no-gateway", "skip the gateway figures (request latency through it vs. direct; wake on connect)")
    .option("--requests <n>", "GET /version requests each way for the gateway's latency", "200")
    .option(
      "--cli",
      "only the CLI start-up figures (--help, list, get against a server with a fake runtime, vs. node -e 0): no clusters, no root",
    )
    .option("--cli-runs <n>", "times each CLI command is spawned for the CLI figures", "20")
    .option(
      "--freeze",
      "with --density: freeze each cluster once it is ready, as the server does after --freeze-after, and thaw each at the end before asking it (timed)",
    )
    .option(
      "--density <n>",
      "only density: create n clusters one after another, let them idle (--idle), report create time against how many run, CPU and private memory per idle cluster, and how many still answer",
    )
    .option("--concurrent <n>", "only concurrency: n creates at once against one create alone")
    .option(
      "--held <n>",
      "only clusters held through the server: n created one after another via the API (idle ones frozen after --freeze-after, the longest frozen put to sleep for each new one once the host is full), their CPU over --idle, then each asked through the gateway",
    )
    .option(
      "--capacity <n>",
      "with --held: the server's capacity (default: what this host holds, as `tempkube server` counts it)",
    )
    .option(
      "--freeze-after <seconds>",
      "the server's freeze time for --held (its default is 60; shorter spares the wait)",
      "5",
    )
    .option(
      "--services",
      "only ephemeral services: on one warm cluster, create → serving through the gateway (pod Ready, Available, first 200) over --runs, against the same Pod bare → Ready",
    )
    .option(
      "--versions <minors>",
      "only create/start/idle figures, for several installed minors interleaved run by run, e.g. 1.37,1.34 (ratios against the first)",
    )
    .option(
      "--compare <tool>",
      "only the side-by-side with another tool: kwok (kwokctl create cluster --runtime binary vs. tempkube runtime create, each as a command, --runs interleaved; needs --kwokctl)",
    )
    .option("--kwokctl <path>", "the kwokctl binary for --compare kwok")
    .option("--kwok <path>", "kwok's controller for --compare kwok (default: kwok beside kwokctl)")
    .option("--etcd <path>", "etcd for --compare kwok (default: etcd beside kwokctl)")
    .option("-o, --output <format>", "text or json", "text")
    .addHelpText(
      "after",
      "\nFigures are medians; the machine is shared and noisy, so compare the ratios.\nExamples:\n  $ sudo bin/tempkube bench --runs 5\n  $ bin/tempkube bench --cli --cli-runs 30\n  $ sudo bin/tempkube bench --density 20 --idle 60\n  $ sudo bin/tempkube bench --density 50 --freeze --idle 60\n  $ sudo bin/tempkube bench --held 100 --idle 60\n  $ sudo bin/tempkube bench --concurrent 10\n  $ sudo bin/tempkube bench --services --runs 5\n  $ sudo bin/tempkube bench --versions 1.37,1.34 --runs 5\n  $ sudo bin/tempkube bench --compare kwok --kwokctl ~/go/bin/kwokctl --etcd /usr/local/bin/etcd --runs 5",
    )
    .action(
      async (opts: {
        runs: string;
        idle: string;
        output: string;
        warmPool: boolean;
        gateway: boolean;
        requests: string;
        cli?: boolean;
        cliRuns: string;
        density?: string;
        held?: string;
        capacity?: string;
        freezeAfter: string;
        freeze?: boolean;
        concurrent?: string;
        versions?: string;
        services?: boolean;
        compare?: string;
        kwokctl?: string;
        kwok?: string;
        etcd?: string;
      }) => {
        if (opts.compare !== undefined) {
          if (opts.compare !== "kwok")
            throw new TempkubeError(
              "invalid-input",
              `--compare takes kwok (the one tool compared), not "${opts.compare}"`,
            );
          if (!opts.kwokctl) throw new TempkubeError("invalid-input", "--compare kwok needs --kwokctl PATH");
          const { benchKwok, formatKwok, kwokTools } = await import("../../bench/kwok-compare.js");
          const tools = kwokTools(opts.kwokctl, opts.kwok, opts.etcd);
          const kwok = await benchKwok(positive("--runs", opts.runs), tools, progress);
          if (opts.output === "json") return void process.stdout.write(`${JSON.stringify({ kwok }, null, 2)}\n`);
          return void process.stdout.write(formatKwok(kwok));
        }
        if (opts.services) {
          const { benchServices, formatServices } = await import("../../bench/services-bench.js");
          const services = await benchServices(positive("--runs", opts.runs), progress);
          if (opts.output === "json") return void process.stdout.write(`${JSON.stringify({ services }, null, 2)}\n`);
          return void process.stdout.write(formatServices(services));
        }
        if (opts.versions !== undefined) {
          const [{ benchReleases, formatReport, formatComparison }, { resolveReleases }] = await Promise.all([
            import("../../bench/local-bench.js"),
            import("../releases.js"),
          ]);
          const releases = resolveReleases(opts.versions.split(",").map((v) => v.trim()));
          if (releases.length < 2)
            throw new TempkubeError("invalid-input", `--versions needs two or more minors, e.g. 1.37,1.34`);
          const reports = await benchReleases(
            { runs: positive("--runs", opts.runs), idleSeconds: Number(opts.idle), log: progress },
            releases,
          );
          if (opts.output === "json") return void process.stdout.write(`${JSON.stringify({ reports }, null, 2)}\n`);
          return void process.stdout.write(reports.map(formatReport).join("") + formatComparison(reports));
        }
        if (opts.held !== undefined) {
          const { benchHeldDensity, formatHeldDensity } = await import("../../bench/held-density-bench.js");
          const held = await benchHeldDensity(
            positive("--held", opts.held),
            {
              freezeAfterMs: positive("--freeze-after", opts.freezeAfter) * 1000,
              idleSeconds: Number(opts.idle),
              hostCapacity: opts.capacity === undefined ? undefined : positive("--capacity", opts.capacity),
            },
            progress,
          );
          if (opts.output === "json") return void process.stdout.write(`${JSON.stringify({ held }, null, 2)}\n`);
          return void process.stdout.write(`tempkube bench\n${formatHeldDensity(held)}`);
        }
        if (opts.density !== undefined || opts.concurrent !== undefined) {
          const { benchDensity, benchConcurrent, formatDensity, formatConcurrency } =
            await import("../../bench/density-bench.js");
          const density =
            opts.density === undefined
              ? undefined
              : await benchDensity(positive("--density", opts.density), Number(opts.idle), progress, {
                  freeze: !!opts.freeze,
                });
          const concurrency =
            opts.concurrent === undefined
              ? undefined
              : await benchConcurrent(positive("--concurrent", opts.concurrent), progress);
          if (opts.output === "json")
            return void process.stdout.write(`${JSON.stringify({ density, concurrency }, null, 2)}\n`);
          return void process.stdout.write(
            `tempkube bench\n${density ? formatDensity(density) : ""}${concurrency ? formatConcurrency(concurrency) : ""}`,
          );
        }
        const cliRuns = positive("--cli-runs", opts.cliRuns);
        const { benchCli, formatCli } = await import("../../bench/cli-bench.js");
        if (opts.cli) {
          const cli = await benchCli(cliRuns, progress);
          if (opts.output === "json") return void process.stdout.write(`${JSON.stringify({ cli }, null, 2)}\n`);
          return void process.stdout.write(`tempkube bench --cli\n${formatCli(cli)}`);
        }
        const runs = positive("--runs", opts.runs);
        const requests = positive("--requests", opts.requests);
        const [
          { benchLocal, formatReport },
          { median },
          { benchWarmPool, formatWarmPool },
          { benchGateway, formatGateway },
        ] = await Promise.all([
          import("../../bench/local-bench.js"),
          import("../../bench/stats.js"),
          import("../../bench/warm-pool-bench.js"),
          import("../../bench/gateway-bench.js"),
        ]);
        const report = await benchLocal({ runs, idleSeconds: Number(opts.idle), log: progress });
        const warmPool = opts.warmPool ? await benchWarmPool(runs, progress) : undefined;
        const gateway = opts.gateway ? await benchGateway(requests, runs, progress) : undefined;
        const cli = await benchCli(cliRuns, progress);
        if (opts.output === "json")
          return void process.stdout.write(`${JSON.stringify({ ...report, warmPool, gateway, cli }, null, 2)}\n`);
        const baseline = median(report.baselineReadyMs);
        process.stdout.write(
          formatReport(report) +
            (warmPool ? formatWarmPool(warmPool, baseline) : "") +
            (gateway ? formatGateway(gateway, baseline) : "") +
            formatCli(cli),
        );
      },
    );
}
