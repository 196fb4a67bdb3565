import { readFile } from "node:fs/promises";
import YAML from "yaml";
import { parseWarmPool, warmPoolFromList, type ParsedPools, type PoolProfile } from "../core/pool-profiles.js";
import { DEFAULT_KUBERNETES_MINOR, KUBERNETES_RELEASES } from "../setup/catalogue.js";
import { TempkubeError } from "../util/errors.js";

const OFFERED = { releases: KUBERNETES_RELEASES, defaultMinor: DEFAULT_KUBERNETES_MINOR };

/**
 * The warm pools `tempkube server` is told to keep: `--warm-pool` (a number of default-shape
 * clusters, or profiles; default 1) or `--warm-pool-file` (a YAML list), never both.
 * Syntax and rules: core/pool-profiles.ts.
 */
export async function warmPoolOptions(text: string | undefined, file: string | undefined): Promise<PoolProfile[]> {
  if (file === undefined) return profilesOr(parseWarmPool(text ?? "1", OFFERED));
  if (text !== undefined) throw new TempkubeError("invalid-input", "give --warm-pool or --warm-pool-file, not both");
  const yaml = await readFile(file, "utf8").catch((err: NodeJS.ErrnoException) => {
    throw new TempkubeError(
      "invalid-input",
      `--warm-pool-file ${file}: ${err.code === "ENOENT" ? "no such file" : err.message}`,
    );
  });
  return profilesOr(warmPoolFromList(readYaml(yaml, file), file, OFFERED));
}

/** "1.34/1-mid=2,1.33/1-small=1", or "none": what the server says it keeps. */
export function describeWarmPools(pools: readonly PoolProfile[]): string {
  const kept = pools.filter((p) => p.count > 0);
  return kept.length ? kept.map((p) => `${p.label}=${p.count}`).join(",") : "none";
}

/** Pools that want more than the host can give them (a pool never takes the host's last place), said as a warning. */
export function warmPoolsBeyondCapacity(pools: readonly PoolProfile[], hostCapacity: number): string | undefined {
  const wanted = pools.reduce((n, p) => n + p.count, 0);
  if (wanted < hostCapacity) return undefined;
  return `the warm pools want ${wanted} clusters and the host holds ${hostCapacity}: they fill ${Math.max(0, hostCapacity - 1)} at most (the last place stays free for users)`;
}

function readYaml(text: string, file: string): unknown {
  try {
    // Every scalar as the text it is (the failsafe schema): `version: 1.30` must stay "1.30", not the number 1.3.
    return YAML.parse(text, { schema: "failsafe" });
  } catch (err) {
    const first = err instanceof Error ? err.message.split("\n")[0] : String(err);
    throw new TempkubeError("invalid-input", `${file} is not YAML: ${first}`);
  }
}

function profilesOr(parsed: ParsedPools): PoolProfile[] {
  if (parsed.problem !== undefined) throw new TempkubeError("invalid-input", parsed.problem);
  return parsed.profiles;
}
