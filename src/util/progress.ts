/**
 * Progress lines for humans (setup, CLI). Quiet when TEMPKUBE_QUIET is set. Apart from the
 * logger (src/util/log.ts, which loads pino) so that CLI commands start without it.
 */
export function progress(line: string): void {
  if (process.env.TEMPKUBE_QUIET) return;
  process.stderr.write(`${line}\n`);
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}
