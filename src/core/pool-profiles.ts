import { DEFAULT_SIZE, MAX_WORKERS, SIZE_PRESETS, type ClusterSpec, type SizePreset } from "./cluster-spec.js";

/** Everything that shapes a cluster (a spec but its id): what a pooled cluster must match exactly to serve a create. */
export type PoolShape = Omit<ClusterSpec, "id">;

/** One warm pool: clusters of one shape kept booted for creates of that shape to claim. */
export interface PoolProfile {
  /** The shape in the `--warm-pool` syntax ("1.34/1-mid", "1.33/1-small+2w+priv"): its name in /metrics and logs. */
  label: string;
  /** Its version is the release's minor ("1.34"), whichever way the operator wrote it. */
  shape: PoolShape;
  /** Clusters of this shape kept booted (0: none; members left over from an earlier start retire). */
  count: number;
}

/** The Kubernetes versions a pool may hold (setup/catalogue.ts KUBERNETES_RELEASES, passed in: core reads no catalogue). */
export interface OfferedVersions {
  releases: readonly { minor: string; version: string }[];
  defaultMinor: string;
}

/** The `--warm-pool` syntax, for help texts and error messages. */
export const WARM_POOL_SYNTAX = "<version>/<size>[+<n>w][+priv][=<count>], comma-separated";

/** The default shape: the default version and size, no workers, not privileged (what a create that names nothing gets). */
export function defaultPoolShape(defaultMinor: string): PoolShape {
  return { kubernetesVersion: defaultMinor, privileged: false, size: DEFAULT_SIZE, workers: 0 };
}

/** "1.34/1-mid", "1.34/1-mid+1w", "1.34/1-small+2w+priv": the syntax's own spelling of a shape. */
export function profileLabel(shape: PoolShape): string {
  return (
    `${shape.kubernetesVersion}/${shape.size}` +
    (shape.workers ? `+${shape.workers}w` : "") +
    (shape.privileged ? "+priv" : "")
  );
}

function profile(shape: PoolShape, count: number): PoolProfile {
  return { label: profileLabel(shape), shape, count };
}

/** `--warm-pool <n>`: n clusters of the default shape (none for 0). */
export function defaultPoolProfiles(count: number, defaultMinor: string): PoolProfile[] {
  return count ? [profile(defaultPoolShape(defaultMinor), count)] : [];
}

/** The profiles, or what is wrong with the text naming the profile (or entry) and the part. */
export type ParsedPools = { profiles: PoolProfile[]; problem?: undefined } | { problem: string };

/**
 * What `--warm-pool` says. A bare number keeps its first meaning: that many clusters of the
 * default shape (0: no pool). Otherwise comma-separated profiles, each
 * `<version>/<size>[+<n>w][+priv][=<count>]`:
 *   version  a minor tempkube offers ("1.34") or its full version ("v1.34.4");
 *   size     a size preset (1-small, 1-mid, 1-large);
 *   +<n>w    n worker nodes besides the control-plane node (0 to MAX_WORKERS; default none);
 *   +priv    privileged (`+privileged` is read the same);
 *   =<count> clusters kept (default 1).
 * e.g. `1.34/1-mid=2,1.33/1-small,1.34/1-small+1w+priv=1`.
 */
export function parseWarmPool(text: string, versions: OfferedVersions, flag = "--warm-pool"): ParsedPools {
  return parsed(() => poolsFromText(text, versions, flag));
}

function poolsFromText(text: string, versions: OfferedVersions, flag: string): PoolProfile[] {
  const whole = text.trim();
  if (/^\d+$/.test(whole)) return defaultPoolProfiles(Number(whole), versions.defaultMinor);
  if (!whole)
    throw invalid(`${flag} is empty; give a number of default-shape clusters or profiles (${WARM_POOL_SYNTAX})`);
  const profiles = whole.split(",").map((raw, i) => {
    const item = raw.trim();
    const where = `${flag} profile ${i + 1} "${item}"`;
    if (!item) throw invalid(`${where} is empty (a comma too many?); profiles are ${WARM_POOL_SYNTAX}`);
    return parseProfile(item, versions, where);
  });
  return distinct(profiles, flag);
}

function parseProfile(item: string, versions: OfferedVersions, where: string): PoolProfile {
  const [shapeText, countText, ...extra] = item.split("=");
  if (extra.length) throw invalid(`${where}: one "=<count>" at most`);
  const count = countText === undefined ? 1 : wholeNumber(countText, `${where}: count`);
  const [head, ...modifiers] = shapeText!.split("+");
  const slash = head!.split("/");
  if (slash.length !== 2 || !slash[0] || !slash[1])
    throw invalid(`${where}: expected <version>/<size> before any +modifier or =count (${WARM_POOL_SYNTAX})`);
  const kubernetesVersion = offeredMinor(slash[0], versions, `${where}: version`);
  const size = sizePreset(slash[1], `${where}: size`);
  let workers: number | undefined;
  let privileged: boolean | undefined;
  for (const m of modifiers) {
    const w = /^(\d+)w$/.exec(m);
    if (w) {
      if (workers !== undefined) throw invalid(`${where}: workers (+<n>w) given twice`);
      workers = checkedWorkers(Number(w[1]), `${where}: workers "+${m}"`);
    } else if (m === "priv" || m === "privileged") {
      if (privileged) throw invalid(`${where}: +priv given twice`);
      privileged = true;
    } else {
      throw invalid(`${where}: "+${m}" is not a modifier; use +<n>w for n workers (0-${MAX_WORKERS}) or +priv`);
    }
  }
  return profile({ kubernetesVersion, size, workers: workers ?? 0, privileged: privileged ?? false }, count);
}

/**
 * `--warm-pool-file`: a list of profiles as fields, each `{version, size, workers, privileged,
 * count}`; every field may be left out (defaults: the default version, size 1-mid, no workers,
 * not privileged, count 1). `doc` is the file as YAML's failsafe schema reads it (every scalar
 * a string: `version: 1.30` must not become the number 1.3; server/warm-pool-file.ts). e.g.
 *   - {version: "1.34", size: 1-mid, count: 2}
 *   - {version: "1.33", size: 1-small, workers: 1, privileged: true}
 */
export function warmPoolFromList(doc: unknown, file: string, versions: OfferedVersions): ParsedPools {
  return parsed(() => poolsFromList(doc, file, versions));
}

function poolsFromList(doc: unknown, file: string, versions: OfferedVersions): PoolProfile[] {
  if (doc === null || doc === undefined) return [];
  if (!Array.isArray(doc))
    throw invalid(`${file} must be a YAML list of profiles ({version, size, workers, privileged, count})`);
  const profiles = doc.map((entry: unknown, i) => {
    const where = `${file} entry ${i + 1}`;
    if (typeof entry !== "object" || entry === null || Array.isArray(entry))
      throw invalid(`${where} must be a mapping of version, size, workers, privileged, count`);
    const fields = entry as Record<string, unknown>;
    for (const key of Object.keys(fields))
      if (!FILE_FIELDS.includes(key))
        throw invalid(`${where}: unknown field "${key}"; fields are ${FILE_FIELDS.join(", ")}`);
    const text = (key: string): string | undefined => {
      const v = fields[key];
      if (v === undefined || v === null) return undefined;
      if (typeof v !== "string") throw invalid(`${where}: ${key} must be a single value`);
      return v.trim();
    };
    const version = text("version");
    const size = text("size");
    const workers = text("workers");
    const privileged = text("privileged");
    const count = text("count");
    if (privileged !== undefined && privileged !== "true" && privileged !== "false")
      throw invalid(`${where}: privileged must be true or false, not "${privileged}"`);
    const shape: PoolShape = {
      kubernetesVersion:
        version === undefined ? versions.defaultMinor : offeredMinor(version, versions, `${where}: version`),
      size: size === undefined ? DEFAULT_SIZE : sizePreset(size, `${where}: size`),
      workers:
        workers === undefined ? 0 : checkedWorkers(wholeNumber(workers, `${where}: workers`), `${where}: workers`),
      privileged: privileged === "true",
    };
    return profile(shape, count === undefined ? 1 : wholeNumber(count, `${where}: count`));
  });
  return distinct(profiles, file);
}

const FILE_FIELDS = ["version", "size", "workers", "privileged", "count"];

/** The `--services-cluster` syntax, for help texts and error messages. */
export const SERVICES_CLUSTER_SYNTAX = "<size>[/<version>][+<n>w], or none";

/**
 * What `--services-cluster` says: the shape of the cluster the server keeps for ephemeral
 * services (service/services-cluster.ts), or `none` (no services on this server: undefined).
 * `<size>[/<version>][+<n>w]`, the version defaulting to the default one; `<version>/<size>`
 * (the `--warm-pool` order) is read the same. Never privileged: it runs API callers' images.
 */
export function parseServicesCluster(
  text: string,
  versions: OfferedVersions,
  flag = "--services-cluster",
): { shape: PoolShape | undefined; problem?: undefined } | { problem: string } {
  try {
    const whole = text.trim();
    if (whole === "none") return { shape: undefined };
    const where = `${flag} "${text}"`;
    const [head, ...modifiers] = whole.split("+");
    const parts = head!.split("/");
    if (!head || parts.length > 2 || parts.some((p) => !p))
      throw invalid(`${where}: expected ${SERVICES_CLUSTER_SYNTAX}`);
    // Sizes are names ("1-mid"), versions numbers ("1.34", "v1.34.4"): either order is unambiguous.
    const sizeFirst = parts[0]! in SIZE_PRESETS || parts.length === 1;
    const [sizeText, versionText] = sizeFirst ? [parts[0]!, parts[1]] : [parts[1]!, parts[0]];
    let workers: number | undefined;
    for (const m of modifiers) {
      const w = /^(\d+)w$/.exec(m);
      if (m === "priv" || m === "privileged")
        throw invalid(`${where}: the services cluster runs API callers' images and may not be privileged`);
      if (!w) throw invalid(`${where}: "+${m}" is not a modifier; use +<n>w for n workers (0-${MAX_WORKERS})`);
      if (workers !== undefined) throw invalid(`${where}: workers (+<n>w) given twice`);
      workers = checkedWorkers(Number(w[1]), `${where}: workers "+${m}"`);
    }
    return {
      shape: {
        kubernetesVersion:
          versionText === undefined ? versions.defaultMinor : offeredMinor(versionText, versions, `${where}: version`),
        size: sizePreset(sizeText, `${where}: size`),
        workers: workers ?? 0,
        privileged: false,
      },
    };
  } catch (err) {
    if (err instanceof PoolsProblem) return { problem: err.message };
    throw err;
  }
}

function offeredMinor(text: string, versions: OfferedVersions, what: string): string {
  const wanted = text.trim().replace(/^v/, "");
  const release = versions.releases.find((r) => r.minor === wanted || r.version === `v${wanted}`);
  if (!release)
    throw invalid(
      `${what} "${text}" is not offered; offered: ${versions.releases.map((r) => r.minor).join(", ")} (tempkube versions)`,
    );
  return release.minor;
}

function sizePreset(text: string, what: string): SizePreset {
  if (!(text in SIZE_PRESETS)) throw invalid(`${what} "${text}" is not one of ${Object.keys(SIZE_PRESETS).join(", ")}`);
  return text as SizePreset;
}

function checkedWorkers(n: number, what: string): number {
  if (n > MAX_WORKERS) throw invalid(`${what}: at most ${MAX_WORKERS} workers`);
  return n;
}

function wholeNumber(text: string, what: string): number {
  if (!/^\d+$/.test(text.trim())) throw invalid(`${what} must be a whole number >= 0, not "${text}"`);
  return Number(text.trim());
}

/** Two profiles of one shape would be one pool counted twice: refused, naming both. */
function distinct(profiles: PoolProfile[], where: string): PoolProfile[] {
  const seen = new Map<string, number>();
  profiles.forEach((p, i) => {
    const first = seen.get(p.label);
    if (first !== undefined)
      throw invalid(`${where}: profiles ${first + 1} and ${i + 1} are the same shape (${p.label}); give one count`);
    seen.set(p.label, i);
  });
  return profiles;
}

/** Thrown inside this module only; callers get a ParsedPools. */
class PoolsProblem extends Error {}

function invalid(message: string): PoolsProblem {
  return new PoolsProblem(message);
}

function parsed(parse: () => PoolProfile[]): ParsedPools {
  try {
    return { profiles: parse() };
  } catch (err) {
    if (err instanceof PoolsProblem) return { problem: err.message };
    throw err;
  }
}
