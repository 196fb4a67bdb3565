/**
 * The `Ephemeron` custom resource, as qualified/ephemeron defines it (src/resource/mod.rs):
 * same group, version, names and spec fields, so manifests written for the reference apply
 * unchanged. This file is the contract between the controller (src/services/), the services
 * API (src/service/ephemeral-services.ts, src/server/) and the gateway's route files.
 */
export const EPHEMERON_GROUP = "qualified.io";
export const EPHEMERON_VERSION = "v1alpha1";
export const EPHEMERON_KIND = "Ephemeron";
export const EPHEMERON_PLURAL = "ephemerons";
export const EPHEMERON_SHORT_NAMES = ["eph", "ephs"];

/** Set by the controller once a request through the route answered 200 (the reference's annotation). */
export const HOST_ANNOTATION = "host";
/** Who asked for it through an API (`sub` of the caller: `uid.app`, or `token:<id>` for tempkube tokens). */
export const CREATED_BY_ANNOTATION = "ephemerons.qualified.io/created-by";
/** The pod label a gid puts on a service (`gid.app`). */
export const GROUP_LABEL = "ephemerons.qualified.io/group";
/** Labels of every child object (Pod, Service, Ingress), as the reference sets them. */
export const NAME_LABEL = "app.kubernetes.io/name";
export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
export const MANAGED_BY = "ephemeron";

export interface EphemeronEnvVar {
  name: string;
  value?: string;
}

export interface EphemeronProbe {
  path: string;
  initialDelaySeconds?: number;
  periodSeconds?: number;
  timeoutSeconds?: number;
}

/** `spec.service`: one image, one port. */
export interface EphemeronService {
  image: string;
  port: number;
  command?: string[];
  workingDir?: string;
  tlsSecretName?: string;
  ingressAnnotations?: Record<string, string>;
  readinessProbe?: EphemeronProbe;
  imagePullPolicy?: "Always" | "Never" | "IfNotPresent";
  resources?: { limits?: Record<string, string>; requests?: Record<string, string> };
  env?: EphemeronEnvVar[];
  podLabels?: Record<string, string>;
}

export interface EphemeronSpec {
  /** RFC 3339; the object and its children are deleted at this time. */
  expirationTime: string;
  service: EphemeronService;
}

/**
 * `PodReady` and `Available` as the reference has them; tempkube adds `reason`/`message`
 * (e.g. reason `InvalidSpec`, `ImagePullBackOff`) so a bad spec says why instead of looping.
 */
export type EphemeronConditionType = "PodReady" | "Available";

export interface EphemeronCondition {
  type: EphemeronConditionType;
  status: "True" | "False" | "Unknown";
  lastTransitionTime: string;
  reason?: string;
  message?: string;
}

export interface EphemeronStatus {
  conditions?: EphemeronCondition[];
  observedGeneration?: number;
}

export interface Ephemeron {
  apiVersion: `${typeof EPHEMERON_GROUP}/${typeof EPHEMERON_VERSION}`;
  kind: typeof EPHEMERON_KIND;
  metadata: {
    name: string;
    uid?: string;
    generation?: number;
    resourceVersion?: string;
    creationTimestamp?: string;
    deletionTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec: EphemeronSpec;
  status?: EphemeronStatus;
}

/**
 * The host name an Ephemeron is served at through the gateway: in the services cluster
 * `<name>.<services domain>`; in a tenant's cluster `<name>.<cluster id>.<cluster domain>`,
 * so names never clash across clusters and a tenant can only ever make names under its own id.
 */
export function ephemeronHost(
  name: string,
  where: { servicesDomain: string } | { clusterId: string; clusterDomain: string },
): string {
  return "servicesDomain" in where
    ? `${name}.${where.servicesDomain}`
    : `${name}.${where.clusterId}.${where.clusterDomain}`;
}

/** `--services-domain` by default: a name under the gateway's cluster domain that no cluster id can be (ids are letters and digits, 3-16). */
export function defaultServicesDomain(clusterDomain: string): string {
  return `services.${clusterDomain}`;
}
