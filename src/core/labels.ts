/**
 * ["team=a", "env=ci"] → { team: "a", env: "ci" }. `refuse` builds the error for a pair
 * without a key (each surface names its own field); the value may be empty or hold "=".
 */
export function parseLabelPairs(pairs: string[], refuse: (pair: string) => Error): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const i = pair.indexOf("=");
    if (i <= 0) throw refuse(pair);
    out[pair.slice(0, i)] = pair.slice(i + 1);
  }
  return out;
}
