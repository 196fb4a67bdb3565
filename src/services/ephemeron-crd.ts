import YAML from "yaml";
import {
  CREATED_BY_ANNOTATION,
  EPHEMERON_GROUP,
  EPHEMERON_KIND,
  EPHEMERON_PLURAL,
  EPHEMERON_SHORT_NAMES,
  EPHEMERON_VERSION,
  HOST_ANNOTATION,
} from "./ephemeron-types.js";

/**
 * The Ephemeron CustomResourceDefinition: the reference's schema (qualified/ephemeron
 * k8s/ephemerons.yaml, generated from src/resource/mod.rs), so its manifests apply unchanged,
 * plus printer columns (the reference has none). The schema is a first filter for kubectl
 * users only: tenants may edit CRDs in their own cluster, so the controller validates every
 * object again (ephemeron-spec.ts) and never trusts what the apiserver let through.
 */
const str = (description: string) => ({ type: "string", description });
const int32 = (description: string) => ({ type: "integer", format: "int32", nullable: true, description });
const quantities = (description: string) => ({
  type: "object",
  description,
  additionalProperties: { "x-kubernetes-int-or-string": true, anyOf: [{ type: "integer" }, { type: "string" }] },
});

const serviceSchema = {
  type: "object",
  description: "The service to create.",
  required: ["image", "port"],
  properties: {
    image: str("The image to use."),
    command: {
      type: "array",
      nullable: true,
      items: { type: "string" },
      description: "Optionally specify the command to use.",
    },
    workingDir: { ...str("The directory to run command in."), nullable: true },
    port: { type: "integer", minimum: 1, maximum: 65535, description: "The port to use." },
    tlsSecretName: { ...str("The name of a kubernetes.io/tls Secret in namespace default."), nullable: true },
    ingressAnnotations: {
      type: "object",
      additionalProperties: { type: "string" },
      description:
        "Ingress annotations (accepted for compatibility; tempkube routes through its gateway, not an Ingress).",
    },
    readinessProbe: {
      type: "object",
      nullable: true,
      description: "Probe to tell when the service is ready to accept traffic.",
      required: ["path"],
      properties: {
        path: str("Path to make a request to."),
        initialDelaySeconds: int32("Number of seconds after the container has started before probes are initiated."),
        periodSeconds: int32("How often (in seconds) to perform the probe. Default to 10 seconds. Minimum value is 1."),
        timeoutSeconds: int32(
          "Number of seconds after which the probe times out. Defaults to 1 second. Minimum value is 1.",
        ),
      },
    },
    imagePullPolicy: {
      ...str("Image pull policy. One of Always, Never, IfNotPresent."),
      nullable: true,
      enum: ["Always", "Never", "IfNotPresent"],
    },
    resources: {
      type: "object",
      nullable: true,
      description: "Compute Resources required by this container.",
      properties: {
        limits: quantities("Limits describes the maximum amount of compute resources allowed."),
        requests: quantities("Requests describes the minimum amount of compute resources required."),
      },
    },
    env: {
      type: "array",
      nullable: true,
      description: "List of environment variables to set in the container.",
      items: {
        type: "object",
        required: ["name"],
        properties: {
          name: str("Name of the environment variable."),
          value: { ...str('Value of the environment variable. Defaults to "".'), nullable: true },
        },
      },
    },
    podLabels: {
      type: "object",
      additionalProperties: { type: "string" },
      description: "Additional labels to add to the Pod.",
    },
  },
};

const conditionSchema = {
  type: "object",
  required: ["type", "status"],
  properties: {
    type: { type: "string", enum: ["PodReady", "Available"] },
    status: { type: "string", enum: ["Unknown", "True", "False"], default: "Unknown" },
    lastTransitionTime: { type: "string", format: "date-time" },
    reason: { type: "string" },
    message: { type: "string" },
  },
};

export function ephemeronCrdObject(): Record<string, unknown> {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${EPHEMERON_PLURAL}.${EPHEMERON_GROUP}` },
    spec: {
      group: EPHEMERON_GROUP,
      scope: "Cluster",
      names: {
        kind: EPHEMERON_KIND,
        plural: EPHEMERON_PLURAL,
        singular: EPHEMERON_KIND.toLowerCase(),
        shortNames: EPHEMERON_SHORT_NAMES,
      },
      versions: [
        {
          name: EPHEMERON_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            // The annotation key `host` has no dot, so the JSONPath needs no escaping.
            { name: "Host", type: "string", jsonPath: `.metadata.annotations.${HOST_ANNOTATION}` },
            { name: "Available", type: "string", jsonPath: '.status.conditions[?(@.type=="Available")].status' },
            { name: "Expires", type: "date", jsonPath: ".spec.expirationTime" },
            {
              name: "Created-By",
              type: "string",
              priority: 1,
              jsonPath: `.metadata.annotations.${CREATED_BY_ANNOTATION.replace(/\./g, "\\.")}`,
            },
          ],
          schema: {
            openAPIV3Schema: {
              type: "object",
              required: ["spec"],
              properties: {
                spec: {
                  type: "object",
                  required: ["expirationTime", "service"],
                  properties: {
                    expirationTime: {
                      type: "string",
                      format: "date-time",
                      description: "The date and time to kill this service on.",
                    },
                    service: serviceSchema,
                  },
                },
                status: {
                  type: "object",
                  nullable: true,
                  properties: {
                    conditions: { type: "array", items: conditionSchema },
                    observedGeneration: {
                      type: "integer",
                      format: "int64",
                      description: "The last reconciled generation.",
                    },
                  },
                },
              },
            },
          },
        },
      ],
    },
  };
}

/**
 * The one ClusterRole a tenant may bind cluster-wide (tenant-guards.ts lets a tenant create a
 * ClusterRoleBinding to it and to nothing else): Ephemerons are cluster-scoped, so a
 * RoleBinding cannot grant them, and without it no ServiceAccount of the tenant's (a CI job,
 * a preview bot) could make one. It holds nothing the tenant does not hold itself.
 */
export const EPHEMERON_BINDABLE_ROLE = "tempkube:ephemerons";

export function ephemeronRole(): string {
  return YAML.stringify({
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: { name: EPHEMERON_BINDABLE_ROLE },
    rules: [
      {
        apiGroups: [EPHEMERON_GROUP],
        resources: [EPHEMERON_PLURAL],
        verbs: ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"],
      },
      { apiGroups: [EPHEMERON_GROUP], resources: [`${EPHEMERON_PLURAL}/status`], verbs: ["get", "list", "watch"] },
    ],
  });
}

/** What every tempkube cluster gets at every boot: the CRD and the bindable role. */
export function ephemeronClusterObjects(): string {
  return [ephemeronCrd(), ephemeronRole()].join("---\n");
}

/** The CRD as one YAML document: applied at every cluster boot, and what `tempkube ephemeron manifests` prints. */
export function ephemeronCrd(): string {
  return YAML.stringify(ephemeronCrdObject());
}
