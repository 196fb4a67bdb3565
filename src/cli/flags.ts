import { parseLabelPairs } from "../core/labels.js";
import { TempkubeError } from "../util/errors.js";

/** "30m", "2h", "90" (minutes) → minutes; `flag` names the option in the error. */
export function parseTtl(text: string, flag = "--ttl"): number {
  const m = /^(\d+)\s*(m|min|h)?$/.exec(text.trim());
  if (!m) throw new TempkubeError("invalid-input", `${flag} must look like 30m or 2h, not "${text}"`);
  return Number(m[1]) * (m[2] === "h" ? 60 : 1);
}

/** ["team=a", "env=ci"] → { team: "a", env: "ci" } */
export function parseLabels(pairs: string[] | undefined): Record<string, string> | undefined {
  if (!pairs?.length) return undefined;
  return parseLabelPairs(
    pairs,
    (pair) => new TempkubeError("invalid-input", `--label must be key=value, not "${pair}"`),
  );
}
