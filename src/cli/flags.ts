import { parseLabelPairs } from "../core/labels.js";
import { TempkubeError } from "../util/errors.js";

/** "30m", "2h", "90" (minutes) → minutes; `flag` names the option in the error. */
export function parseTtl(text: string, flag = "--ttl"): number {
  const m = /^(\d+)\s*(m|min|h)?$/.exec(text.trim());
  if (!m) throw new TempkubeError("invalid-input", `${flag} must look like 30m or 2h, not "${text}"`);
  return Number(m[1]) * (m[2] === "h" ? 60 : 1);
}

/** "90s", "2m", "1h", "0" → milliseconds (a bare number is seconds); `flag` names the option in the error. */
export function parseDurationMs(text: string, flag: string): number {
  const m = /^(\d+)\s*(s|m|min|h)?$/.exec(text.trim());
  if (!m) throw new TempkubeError("invalid-input", `${flag} must look like 90s, 2m or 0, not "${text}"`);
  const unit = m[2] === "h" ? 3_600_000 : m[2] === "m" || m[2] === "min" ? 60_000 : 1000;
  return Number(m[1]) * unit;
}

/** ["team=a", "env=ci"] → { team: "a", env: "ci" } */
export function parseLabels(pairs: string[] | undefined): Record<string, string> | undefined {
  if (!pairs?.length) return undefined;
  return parseLabelPairs(
    pairs,
    (pair) => new TempkubeError("invalid-input", `--label must be key=value, not "${pair}"`),
  );
}

/** `[host:]port` of a listener; `defaultHost` when the host is left out. */
export function listenAddress(flag: string, text: string, apiHost: string): { host: string; port: number } {
  const m = /^(?:(.+):)?(\d+)$/.exec(text.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535)
    throw new TempkubeError("invalid-input", `${flag} must be [host:]port with a port from 1 to 65535, not "${text}"`);
  return { host: m[1] ? m[1].replace(/^\[(.*)\]$/, "$1") : apiHost, port };
}

/** Cluster names are <id>.<domain> in SNI and certificates: a DNS name, lower case (RFC 1123 labels). */
export function checkedDomain(text: string, flag: string): string {
  const domain = text.trim().replace(/\.$/, "");
  const label = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
  if (!domain || domain.length > 200 || !domain.split(".").every((l) => label.test(l)))
    throw new TempkubeError(
      "invalid-input",
      `${flag} must be a DNS name in lower case (labels of a-z, 0-9 and -), not "${text}"`,
    );
  return domain;
}
