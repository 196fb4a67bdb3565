import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The CLI as a user runs it: bin/tempkube in its own process. */
export const BIN = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "bin", "tempkube");

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function tempkube(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(BIN, args, { timeout: 300_000, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
