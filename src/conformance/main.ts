import { join } from "node:path";
import { parseArgs } from "node:util";
import { DEFAULT_KUBERNETES_MINOR, findRelease, KUBERNETES_RELEASES } from "../setup/catalogue.js";
import { TempkubeError } from "../util/errors.js";
import { ensureConformanceArtifacts, runConformance } from "./conformance-run.js";

/**
 * scripts/conformance: upstream's conformance suite (non-Serial) against a fresh cluster.
 * Exit code 0 when no spec failed, 1 when some did, 2 when the run could not be made.
 */
const USAGE = `usage: scripts/conformance [--version MINOR] [--focus RE] [--skip RE] [--workers N] [--results-dir DIR] [--timeout DURATION]

  --version MINOR     Kubernetes minor of the cluster (default ${DEFAULT_KUBERNETES_MINOR}; offered: ${KUBERNETES_RELEASES.map((r) => r.minor).join(", ")})
  --focus RE          run only the conformance specs whose text also matches RE
  --skip RE           skip the specs matching RE as well ([Serial] ones are always skipped)
  --workers N         worker nodes besides the control plane (default 1: some specs want two nodes)
  --results-dir DIR   where the JUnit report, e2e.test's log and the summary go
                      (default ./conformance-results/<version>-<time>)
  --timeout DURATION  ginkgo's limit for the whole run (default 6h)
  --build-only        build (or find cached) e2e.test and the test images, run nothing
`;

export function parseConformanceArgs(argv: string[], now = new Date()) {
  const { values } = parseArgs({
    args: argv,
    options: {
      version: { type: "string", default: DEFAULT_KUBERNETES_MINOR },
      focus: { type: "string" },
      skip: { type: "string" },
      workers: { type: "string", default: "1" },
      "results-dir": { type: "string" },
      timeout: { type: "string", default: "6h" },
      help: { type: "boolean", short: "h" },
      "build-only": { type: "boolean", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return { help: true as const };
  const release = findRelease(values.version);
  if (!release)
    throw new TempkubeError(
      "invalid-input",
      `--version ${values.version} is not an offered Kubernetes minor (${KUBERNETES_RELEASES.map((r) => r.minor).join(", ")})`,
    );
  const workers = Number(values.workers);
  if (!Number.isInteger(workers) || workers < 0 || workers > 4)
    throw new TempkubeError("invalid-input", `--workers must be an integer from 0 to 4, not "${values.workers}"`);
  if (!/^\d+(\.\d+)?(h|m|s)$/.test(values.timeout))
    throw new TempkubeError("invalid-input", `--timeout must be a duration such as 90m or 6h, not "${values.timeout}"`);
  for (const [flag, re] of [
    ["--focus", values.focus],
    ["--skip", values.skip],
  ] as const)
    if (re !== undefined && re.trim() === "") throw new TempkubeError("invalid-input", `${flag} is empty`);
  const stamp = now.toISOString().replace(/[-:]/g, "").replace(/\..*/, "");
  return {
    help: false as const,
    buildOnly: values["build-only"],
    release,
    focus: values.focus,
    skip: values.skip,
    workers,
    timeout: values.timeout,
    resultsDir: values["results-dir"] ?? join(process.cwd(), "conformance-results", `${release.version}-${stamp}`),
  };
}

async function main(): Promise<number> {
  let options: ReturnType<typeof parseConformanceArgs>;
  try {
    options = parseConformanceArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (options.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const { help: _help, buildOnly, ...run } = options;
  try {
    if (buildOnly) {
      await ensureConformanceArtifacts(run.release);
      return 0;
    }
    const { summary } = await runConformance(run);
    return summary.total.failed === 0 ? 0 : 1;
  } catch (err) {
    process.stderr.write(`conformance: ${(err as Error).message}\n`);
    return 2;
  }
}

if (process.argv[1] && import.meta.url === `file://${process.argv[1]}`) {
  // exit now: the cluster is gone, and nothing the runtime left open (timers, sockets) should keep the script alive.
  process.exit(await main());
}
