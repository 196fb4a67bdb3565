import { fieldName, PULL_POLICIES, serviceProblems } from "./ephemeron-spec.js";
import type { EphemeronService } from "./ephemeron-types.js";

/** The longest lifetime any service may be given (a week, as clusters' MAX_TTL_MINUTES); tokens may allow less. */
export const MAX_SERVICE_MINUTES = 7 * 24 * 60;

/** A service spec that breaks a rule: the message names the field ("presets.web.port must be …"). */
export class ServiceSpecError extends Error {}

/**
 * A `spec.service` from the presets file or a request, checked by the controller's own rules
 * (serviceProblems, with the API's reserved label keys), so a bad one is refused here, naming
 * the field, rather than made only to be reported InvalidSpec. `at` is the field's path in
 * messages ("presets.web", "body/service"). Returns a copy with quantities as strings.
 */
export function validateService(value: unknown, at: string): EphemeronService {
  const sep = at.includes("/") ? "/" : ".";
  const [first] = serviceProblems(value, { api: true });
  if (first) throw new ServiceSpecError(`${fieldName(at, first.path, sep)} ${first.rule}`);
  const service = structuredClone(value) as EphemeronService & Record<string, unknown>;
  // null is "not set" to both checks (the reference's schema has its optional fields nullable).
  for (const [key, v] of Object.entries(service)) if (v === null) delete service[key];
  for (const kind of ["limits", "requests"] as const) {
    const quantities = service.resources?.[kind] as Record<string, string | number> | undefined;
    for (const [name, q] of Object.entries(quantities ?? {})) quantities![name] = String(q);
  }
  return service;
}

/** `spec.service` as a JSON schema: the REST route's request body and its OpenAPI document (validateService has the finer rules). */
export const serviceSpecSchema = {
  type: "object",
  additionalProperties: false,
  required: ["image", "port"],
  description: "the Ephemeron's spec.service, as qualified/ephemeron defines it",
  properties: {
    image: { type: "string", minLength: 1, maxLength: 512 },
    port: { type: "integer", minimum: 1, maximum: 65535 },
    command: { type: "array", items: { type: "string" }, maxItems: 256 },
    workingDir: { type: "string" },
    tlsSecretName: { type: "string", description: "admin tokens only: a Secret in the services cluster" },
    ingressAnnotations: {
      type: "object",
      additionalProperties: { type: "string" },
      description: "admin tokens only",
    },
    readinessProbe: {
      type: "object",
      additionalProperties: false,
      required: ["path"],
      properties: {
        path: { type: "string" },
        initialDelaySeconds: { type: "integer", minimum: 0 },
        periodSeconds: { type: "integer", minimum: 1 },
        timeoutSeconds: { type: "integer", minimum: 1 },
      },
    },
    imagePullPolicy: { type: "string", enum: [...PULL_POLICIES] },
    resources: {
      type: "object",
      additionalProperties: false,
      properties: {
        limits: { type: "object", additionalProperties: { type: ["string", "number"] } },
        requests: { type: "object", additionalProperties: { type: ["string", "number"] } },
      },
    },
    env: {
      type: "array",
      maxItems: 256,
      items: {
        type: "object",
        additionalProperties: false,
        required: ["name"],
        properties: { name: { type: "string" }, value: { type: "string" } },
      },
    },
    podLabels: { type: "object", additionalProperties: { type: "string" } },
  },
} as const;
