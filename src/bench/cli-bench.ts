import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ApiClient } from "../client/api-client.js";
import { startServer } from "../server/server.js";
import { FakeDriver } from "../testing/fakes.js";
import { median, percentile } from "./stats.js";

/** bin/tempkube of this checkout: what a user types, bash wrapper included. */
const BIN = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "bin", "tempkube");

export interface CliBenchReport {
  runs: number;
  /** `node -e 0`: what any Node program costs on this machine, measured in the same run. */
  nodeMs: number[];
  helpMs: number[];
  listMs: number[];
  getMs: number[];
}

/**
 * CLI start-up, process start to exit: `tempkube --help`, `list` and `get <id>` against a
 * real server on loopback (the fake runtime driver: list and get touch no cluster), each
 * spawned `runs` times, interleaved with `node -e 0` so that the ratio holds on a busy machine.
 */
export async function benchCli(runs: number, log: (line: string) => void): Promise<CliBenchReport> {
  const dir = await mkdtemp(join(tmpdir(), "tkcb-"));
  const server = await startServer({
    host: "127.0.0.1",
    port: 0,
    dataDir: dir,
    driver: new FakeDriver(),
    warmPool: 0,
    hostCapacity: 4,
  });
  const report: CliBenchReport = { runs, nodeMs: [], helpMs: [], listMs: [], getMs: [] };
  try {
    const token = (await readFile(server.adminTokenFile, "utf8")).trim();
    const cluster = await ApiClient.at(server.url, token).request<{ id: string }>("POST", "/v1/clusters", {
      ttlMinutes: 30,
      wait: true,
    });
    log(`  cli: spawning --help, list and get ${runs} time(s) each, interleaved with node -e 0`);
    const env = { ...process.env, TEMPKUBE_URL: server.url, TEMPKUBE_TOKEN: token, TEMPKUBE_CA_FILE: "" };
    for (let i = 0; i < runs; i++) {
      report.nodeMs.push(await timed(process.execPath, ["-e", "0"], env));
      report.helpMs.push(await timed(BIN, ["--help"], env));
      report.listMs.push(await timed(BIN, ["list"], env));
      report.getMs.push(await timed(BIN, ["get", cluster.id], env));
    }
  } finally {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
  return report;
}

/** Milliseconds from spawn to exit; a non-zero exit is an error (its stderr says why). */
function timed(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command, args, { env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("exit", (code) => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      if (code === 0) resolve(ms);
      else reject(new Error(`${[command, ...args].join(" ")} exited ${code}: ${stderr.trim()}`));
    });
  });
}

export function formatCli(r: CliBenchReport): string {
  const base = median(r.nodeMs);
  const row = (label: string, ms: number[]) =>
    `  ${label.padEnd(47)}p50 ${median(ms).toFixed(0)} ms  p90 ${percentile(ms, 90).toFixed(0)} ms  (${(median(ms) / base).toFixed(1)}× node -e 0; target ≤ 150 ms)`;
  return (
    [
      `  CLI start-up, process start to exit (${r.runs} runs each, interleaved)`,
      `    baseline  node -e 0                          p50 ${base.toFixed(0)} ms`,
      row("  tempkube --help", r.helpMs),
      row("  tempkube list", r.listMs),
      row("  tempkube get <id>", r.getMs),
    ].join("\n") + "\n"
  );
}
