/**
 * What a cluster may reach outside the host: `internet` (NAT through the host's default
 * route; never other clusters, the host's own services or link-local addresses) or `none`.
 * The local runtime's firewall enforces it (src/runtime/local/host-firewall.ts, which also
 * parses the flags); the names live here so that the CLI's option defaults load no runtime code.
 */
export type ClusterEgress = "internet" | "none";
export const CLUSTER_EGRESS_CHOICES: readonly ClusterEgress[] = ["internet", "none"];

export function isClusterEgress(text: string): text is ClusterEgress {
  return (CLUSTER_EGRESS_CHOICES as readonly string[]).includes(text);
}

/** "--cluster-egress must be one of internet, none, not "x"" */
export function clusterEgressProblem(flag: string, text: string): string {
  return `${flag} must be one of ${CLUSTER_EGRESS_CHOICES.join(", ")}, not "${text}"`;
}

/**
 * `internet` unless TEMPKUBE_CLUSTER_EGRESS says otherwise: the test suite sets `none`, so
 * that its clusters send nothing off the host (the egress test makes an outside of its own).
 */
export const DEFAULT_CLUSTER_EGRESS: ClusterEgress = defaultEgress(process.env.TEMPKUBE_CLUSTER_EGRESS);

function defaultEgress(env: string | undefined): ClusterEgress {
  if (!env) return "internet";
  if (isClusterEgress(env)) return env;
  throw new Error(clusterEgressProblem("TEMPKUBE_CLUSTER_EGRESS", env));
}
