/** Collects what is written to stderr (progress lines) until restored; nothing reaches the terminal meanwhile. */
export function captureStderr(): { lines: () => string[]; restore: () => void } {
  const saved = process.stderr.write.bind(process.stderr);
  const quiet = process.env.TEMPKUBE_QUIET;
  delete process.env.TEMPKUBE_QUIET;
  const written: string[] = [];
  process.stderr.write = ((chunk: string | Uint8Array) => {
    written.push(typeof chunk === "string" ? chunk : Buffer.from(chunk).toString());
    return true;
  }) as typeof process.stderr.write;
  return {
    lines: () => [...written],
    restore: () => {
      process.stderr.write = saved;
      if (quiet !== undefined) process.env.TEMPKUBE_QUIET = quiet;
    },
  };
}
