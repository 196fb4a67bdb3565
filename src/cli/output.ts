/** How commands print what they got: a table or line for humans, or -o json / -o yaml (yaml loaded only then). */
export async function print(output: string | undefined, value: unknown, human: () => string): Promise<void> {
  if (output === "json") process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  else if (output === "yaml") process.stdout.write((await import("yaml")).default.stringify(value));
  else process.stdout.write(human());
}

export function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return (
    rows
      .map((r) =>
        r
          .map((c, i) => c.padEnd(widths[i]))
          .join("  ")
          .trimEnd(),
      )
      .join("\n") + "\n"
  );
}
