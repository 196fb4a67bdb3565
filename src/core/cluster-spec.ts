/** What a user asks for. Pure data; validated before any runtime sees it. */
export interface ClusterSpec {
  /** DNS-label id; generated when absent. */
  id: string;
  /** Kubernetes minor ("1.34") or full version ("v1.34.4"). */
  kubernetesVersion: string;
  privileged: boolean;
  size: SizePreset;
  /** Worker nodes besides the control-plane node (which also runs pods). */
  workers: number;
}

export interface SizeLimits {
  cpus: number;
  memoryBytes: number;
}

const GiB = 2 ** 30;

/** Size presets as users of the SMEK-style API know them (`cluster-size`). */
export const SIZE_PRESETS = {
  "1-small": { cpus: 2, memoryBytes: 4 * GiB },
  "1-mid": { cpus: 8, memoryBytes: 32 * GiB },
  "1-large": { cpus: 16, memoryBytes: 64 * GiB },
} as const satisfies Record<string, SizeLimits>;
export type SizePreset = keyof typeof SIZE_PRESETS;
export const DEFAULT_SIZE: SizePreset = "1-mid";
export const MAX_WORKERS = 4;
/** A cluster's lifetime when the request names none (REST, SMEK-style `minutes-to-live`, CLI `--ttl`). */
export const DEFAULT_TTL_MINUTES = 60;
/** The longest lifetime any request (create, extend, a token's limit) may ask for: a week. */
export const MAX_TTL_MINUTES = 7 * 24 * 60;

/**
 * A cluster id: a DNS label (it names the cluster's network namespaces, kubeconfig context
 * and directories), 3-16 lowercase letters or digits starting with a letter. As source
 * text for the API's JSON schemas (ajv takes a string pattern), and as a RegExp.
 */
export const CLUSTER_ID_PATTERN = "^[a-z][a-z0-9]{2,15}$";
const ID_PATTERN = new RegExp(CLUSTER_ID_PATTERN);

export function isValidClusterId(id: string): boolean {
  return ID_PATTERN.test(id);
}

/**
 * Ids no cluster may have: `services.<cluster domain>` is the ephemeral services' domain
 * (services/ephemeron-types.ts defaultServicesDomain), so a cluster named "services" would have
 * its apiserver's name and its LoadBalancer routes (`<svc>.<ns>.services.<domain>`) there too.
 */
export const RESERVED_CLUSTER_IDS: readonly string[] = ["services"];

/** Returns the problems with a spec, each naming the field; empty when valid. */
export function validateSpec(spec: ClusterSpec): string[] {
  const problems: string[] = [];
  if (!isValidClusterId(spec.id))
    problems.push(`id "${spec.id}" must be 3-16 lowercase letters or digits, starting with a letter`);
  else if (RESERVED_CLUSTER_IDS.includes(spec.id))
    problems.push(`id "${spec.id}" is reserved (services.<cluster domain> is the ephemeral services' domain)`);
  if (!(spec.size in SIZE_PRESETS))
    problems.push(`size "${spec.size}" is not one of ${Object.keys(SIZE_PRESETS).join(", ")}`);
  if (!Number.isInteger(spec.workers) || spec.workers < 0 || spec.workers > MAX_WORKERS)
    problems.push(`workers must be an integer from 0 to ${MAX_WORKERS}`);
  return problems;
}

export function newClusterId(random: () => number = Math.random): string {
  const letters = "abcdefghijklmnopqrstuvwxyz";
  const alnum = `${letters}0123456789`;
  for (;;) {
    let id = letters[Math.floor(random() * letters.length)];
    for (let i = 0; i < 7; i++) id += alnum[Math.floor(random() * alnum.length)];
    // Eight characters, like "services": never drawn, however unlikely.
    if (!RESERVED_CLUSTER_IDS.includes(id)) return id;
  }
}
