import { DESIRED_STATES, PHASES, SYSTEM_PURPOSES } from "../core/cluster-record.js";
import {
  CLUSTER_ID_PATTERN,
  DEFAULT_SIZE,
  DEFAULT_TTL_MINUTES,
  MAX_TTL_MINUTES,
  MAX_WORKERS,
  SIZE_PRESETS,
} from "../core/cluster-spec.js";
import { MAX_IDLE_MINUTES } from "../core/idle.js";
import { KUBERNETES_RELEASES } from "../setup/catalogue.js";
import { MAX_SERVICE_MINUTES, serviceSpecSchema } from "../services/service-spec.js";

/**
 * The JSON schemas of the REST API. The same objects validate requests (Fastify/ajv) and
 * make the OpenAPI document at /openapi.json, so the document cannot drift from the checks.
 * Enums, patterns and defaults come from core/, where the rules they document live.
 */

const sizes = Object.keys(SIZE_PRESETS);
const labels = {
  type: "object",
  maxProperties: 20,
  description: "key/value labels for finding clusters again",
  propertyNames: { pattern: "^[a-zA-Z0-9][a-zA-Z0-9._/-]{0,62}$" },
  additionalProperties: { type: "string", maxLength: 63 },
} as const;

export const createClusterBodySchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    kubernetesVersion: {
      type: "string",
      minLength: 1,
      description:
        `Kubernetes minor or full version: ${KUBERNETES_RELEASES.map((r) => r.minor).join(", ")}; ` +
        "one not installed on the server's host is refused with 409 `not-installed`",
    },
    ttlMinutes: {
      type: "integer",
      minimum: 1,
      maximum: MAX_TTL_MINUTES,
      default: DEFAULT_TTL_MINUTES,
      description: "minutes until expiry",
    },
    keep: { type: "boolean", default: false, description: "at expiry stop (state kept) instead of terminate" },
    idleMinutes: {
      // No `default` here: absent means the server's `--idle-minutes`, which the schema cannot know.
      type: "integer",
      minimum: 0,
      maximum: MAX_IDLE_MINUTES,
      description:
        "minutes without a connection through the gateway after which the cluster sleeps (stopped, state kept, TTL still running) until the next connection wakes it; 0: never; absent: the server's default",
    },
    notificationEmail: { type: "string", format: "email" },
    privileged: {
      type: "boolean",
      default: false,
      description:
        "Pod Security privileged instead of baseline (the token must allow it); on the local runtime a privileged pod is root on the host: for trusted users only",
    },
    size: { type: "string", enum: sizes, default: DEFAULT_SIZE },
    workers: {
      type: "integer",
      minimum: 0,
      maximum: MAX_WORKERS,
      default: 0,
      description: "worker nodes besides the control-plane node",
    },
    name: { type: "string", maxLength: 63 },
    labels,
    wait: { type: "boolean", default: false, description: "answer only once the cluster is ready (or failed)" },
  },
} as const;

export const extendBodySchema = {
  type: "object",
  additionalProperties: false,
  required: ["ttlMinutes"],
  properties: {
    ttlMinutes: { type: "integer", minimum: 1, maximum: MAX_TTL_MINUTES, description: "new expiry, counted from now" },
  },
} as const;

export const clusterIdParamsSchema = {
  type: "object",
  required: ["id"],
  properties: { id: { type: "string", pattern: CLUSTER_ID_PATTERN } },
} as const;

const FOLLOW_DESCRIPTION =
  'stream the operation as it goes, one request in all: application/x-ndjson, a line {"cluster": …} now and at each change of phase until settled, then, for a create or start that ends running, a line {"kubeconfig": "…"}';

export const waitQuerySchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    wait: { type: "boolean", description: "answer once the operation is done" },
    follow: { type: "boolean", description: FOLLOW_DESCRIPTION },
  },
} as const;

export const followQuerySchema = {
  type: "object",
  additionalProperties: false,
  properties: { follow: { type: "boolean", description: FOLLOW_DESCRIPTION } },
} as const;

export const listQuerySchema = {
  type: "object",
  additionalProperties: false,
  properties: { label: { type: "string", description: "only clusters with these labels: key=value[,key=value]" } },
} as const;

export const clusterSchema = {
  type: "object",
  properties: {
    id: { type: "string" },
    name: { type: ["string", "null"] },
    phase: {
      type: "string",
      enum: PHASES,
      description: "sleeping: stopped while idle; the next connection through the gateway (or a start) wakes it",
    },
    desired: { type: "string", enum: DESIRED_STATES },
    kubernetesVersion: { type: "string" },
    kubeletVersion: {
      type: "string",
      description:
        "present only when the nodes' kubelet is not the control plane's release: on a cgroup v1 host, for a release whose kubelet needs cgroup v2, the newest kubelet within the version-skew policy that runs there",
    },
    kubeletReason: { type: "string", description: "why the nodes run kubeletVersion, in plain language" },
    size: { type: "string" },
    workers: { type: "integer" },
    privileged: { type: "boolean" },
    keep: { type: "boolean" },
    notificationEmail: { type: ["string", "null"] },
    ttlMinutes: { type: "integer" },
    idleMinutes: { type: "integer", description: "sleeps after this many minutes without a connection; 0: never" },
    frozen: {
      type: "boolean",
      description:
        "running, its processes frozen while idle (the server's --freeze-after; nothing of the tenant's running in it): no CPU used; the next connection through the gateway thaws it in milliseconds",
    },
    expiresAt: { type: "string", format: "date-time" },
    createdAt: { type: "string", format: "date-time" },
    endpoint: { type: ["string", "null"], description: "the apiserver URL (reachable from this host)" },
    labels: { type: "object", additionalProperties: { type: "string" } },
    lastError: { type: ["string", "null"] },
    phaseTimingsMs: { type: "object", additionalProperties: { type: "number" } },
    system: {
      type: "string",
      enum: SYSTEM_PURPOSES,
      description:
        "present only on a cluster the server keeps for itself (admins alone see it): services, where ephemeral services run; it has no owner, never expires or sleeps, and cannot be stopped, extended or deleted",
    },
  },
} as const;

export const errorSchema = {
  type: "object",
  properties: { error: { type: "string" }, message: { type: "string" } },
} as const;

const tokenLimitProperties = {
  maxClusters: { type: ["integer", "null"], minimum: 0, description: "clusters running at once (null: no limit)" },
  maxTtlMinutes: { type: ["integer", "null"], minimum: 1, maximum: MAX_TTL_MINUTES },
  sizes: { type: ["array", "null"], items: { type: "string", enum: sizes }, uniqueItems: true },
  privileged: {
    type: "boolean",
    description: "may create privileged clusters, whose pods may be root on the host: give it to trusted users only",
  },
  maxServices: {
    type: ["integer", "null"],
    minimum: 0,
    description: "ephemeral services that may exist at once (null: no limit)",
  },
  maxServiceMinutes: {
    type: ["integer", "null"],
    minimum: 1,
    maximum: MAX_SERVICE_MINUTES,
    description: "the longest lifetime of a service, at create or extend (null: up to the server's maximum)",
  },
} as const;

export const createTokenBodySchema = {
  type: "object",
  additionalProperties: false,
  required: ["name"],
  properties: {
    name: { type: "string", minLength: 1, maxLength: 63 },
    admin: { type: "boolean", default: false, description: "may manage tokens and see every cluster; no limits" },
    ...tokenLimitProperties,
  },
} as const;

export const tokenSchema = {
  type: "object",
  properties: {
    id: { type: "integer" },
    name: { type: "string" },
    admin: { type: "boolean" },
    limits: { type: "object", properties: tokenLimitProperties },
    createdAt: { type: "string", format: "date-time" },
    revokedAt: { type: ["string", "null"], format: "date-time" },
    token: { type: "string", description: "the secret; shown once, at creation" },
  },
} as const;

export const tokenIdParamsSchema = {
  type: "object",
  required: ["id"],
  properties: { id: { type: "integer", minimum: 1 } },
} as const;

export const imageUploadQuerySchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    cluster: { type: "string", pattern: CLUSTER_ID_PATTERN, description: "load into this cluster only" },
    name: {
      type: "string",
      pattern: "^[A-Za-z0-9._-]{1,100}$",
      description: "the archive's file name, echoed in the answer",
    },
  },
} as const;

export const imageLoadedSchema = {
  type: "object",
  properties: {
    loaded: { type: "string" },
    into: { type: "string" },
    bytes: { type: "integer" },
    images: {
      type: "array",
      items: { type: "string" },
      description: "the image references the archive named, as pods use them",
    },
  },
} as const;

/** A service's id: an xid from the API, or any object name a kubectl user gave (a DNS label: it is the route's first label). */
export const SERVICE_ID_PATTERN = "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$";

const lifetimeMinutes = {
  type: "integer",
  minimum: 1,
  maximum: MAX_SERVICE_MINUTES,
  description: "minutes until the service and all it owns are deleted, counted from now (the token may allow fewer)",
} as const;

export const createServiceBodySchema = {
  type: "object",
  additionalProperties: false,
  required: ["lifetimeMinutes"],
  properties: {
    preset: { type: "string", minLength: 1, description: "a preset of the server's --services-config" },
    service: serviceSpecSchema,
    lifetimeMinutes,
    notificationEmail: {
      type: "string",
      format: "email",
      maxLength: 254,
      description: "where notifications go (service available, service expired), as a cluster's notificationEmail",
    },
    wait: {
      type: "boolean",
      default: false,
      description: "answer once the service serves (host set), fails, or the server's wait timeout passes",
    },
  },
} as const;

export const extendServiceBodySchema = {
  type: "object",
  additionalProperties: false,
  required: ["lifetimeMinutes"],
  properties: { lifetimeMinutes },
} as const;

export const serviceIdParamsSchema = {
  type: "object",
  required: ["id"],
  properties: { id: { type: "string", pattern: SERVICE_ID_PATTERN } },
} as const;

export const serviceSchema = {
  type: "object",
  properties: {
    id: { type: "string" },
    host: {
      type: ["string", "null"],
      description: "the host name it is served at through the gateway; null until a request through the route answered",
    },
    url: { type: ["string", "null"], description: "http(s)://<host>[:<gateway port>]/ once it serves" },
    expirationTime: { type: "string", format: "date-time" },
    tls: { type: "boolean", description: "served over HTTPS with the service's own certificate (tlsSecretName)" },
    phase: { type: "string", enum: ["pending", "starting", "available", "failed", "deleting"] },
    conditions: {
      type: "array",
      items: {
        type: "object",
        properties: {
          type: { type: "string", enum: ["PodReady", "Available"] },
          status: { type: "string", enum: ["True", "False", "Unknown"] },
          lastTransitionTime: { type: "string" },
          reason: { type: "string" },
          message: { type: "string" },
        },
      },
    },
    image: { type: "string" },
    port: { type: "integer" },
    createdBy: { type: ["string", "null"], description: "token:<id>, or uid.app for an /ephemeron/auth token" },
    createdAt: { type: ["string", "null"], format: "date-time" },
    notificationEmail: {
      type: ["string", "null"],
      description: "where its notifications go; null: nowhere but the webhook",
    },
  },
} as const;
