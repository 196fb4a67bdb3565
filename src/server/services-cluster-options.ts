import { parseServicesCluster, type PoolShape } from "../core/pool-profiles.js";
import { DEFAULT_SIZE, RESERVED_CLUSTER_IDS } from "../core/cluster-spec.js";
import { DEFAULT_KUBERNETES_MINOR, KUBERNETES_RELEASES } from "../setup/catalogue.js";
import { TempkubeError } from "../util/errors.js";

/** `--services-cluster` when not given: the default size and version, made on first use only. */
export const DEFAULT_SERVICES_CLUSTER = DEFAULT_SIZE;

/**
 * The services cluster `tempkube server` is told to keep (`--services-cluster`; syntax:
 * core/pool-profiles.ts parseServicesCluster), or undefined for `none`.
 */
export function servicesClusterOption(text: string | undefined): PoolShape | undefined {
  const parsed = parseServicesCluster(text ?? DEFAULT_SERVICES_CLUSTER, {
    releases: KUBERNETES_RELEASES,
    defaultMinor: DEFAULT_KUBERNETES_MINOR,
  });
  if (parsed.problem !== undefined) throw new TempkubeError("invalid-input", parsed.problem);
  return parsed.shape;
}

/**
 * Why this services domain cannot be used beside this cluster domain, or undefined. Directly
 * under the cluster domain every name but a reserved one (RESERVED_CLUSTER_IDS) may be a
 * cluster's id, whose apiserver and LoadBalancer routes live there: services would share names
 * with a tenant's cluster.
 */
export function servicesDomainProblem(servicesDomain: string, clusterDomain: string): string | undefined {
  if (servicesDomain === clusterDomain)
    return `--services-domain ${servicesDomain} is the cluster domain itself: service and cluster names would clash`;
  if (!servicesDomain.endsWith(`.${clusterDomain}`)) return undefined;
  const labels = servicesDomain.slice(0, -clusterDomain.length - 1).split(".");
  const top = labels[labels.length - 1]!;
  if (RESERVED_CLUSTER_IDS.includes(top)) return undefined;
  return `--services-domain ${servicesDomain} is under the cluster domain at "${top}", which a cluster's id may be; use ${RESERVED_CLUSTER_IDS.map((id) => `${id}.${clusterDomain}`).join(" or ")} (the default) or a domain outside ${clusterDomain}`;
}
