import { pino } from "pino";

/** The one logger. Human progress output goes to stderr through `progress` instead. */
export const logger = pino({
  level: process.env.TEMPKUBE_LOG_LEVEL ?? "warn",
  redact: { paths: ["token", "*.token", "password", "*.password", "key", "*.key"], censor: "[redacted]" },
});

/** Progress lines for humans (setup, CLI). Quiet when TEMPKUBE_QUIET is set. */
export function progress(line: string): void {
  if (process.env.TEMPKUBE_QUIET) return;
  process.stderr.write(`${line}\n`);
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}
