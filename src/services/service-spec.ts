import { SERVICE_FIELDS, validateEphemeron } from "./ephemeron-spec.js";
import { GROUP_LABEL, MANAGED_BY_LABEL, NAME_LABEL, type EphemeronService } from "./ephemeron-types.js";

/** The longest lifetime any service may be given (a week, as clusters' MAX_TTL_MINUTES); tokens may allow less. */
export const MAX_SERVICE_MINUTES = 7 * 24 * 60;

/** Kubernetes' own resource.Quantity pattern (k8s.io/apimachinery/pkg/api/resource/quantity.go splitREString). */
const QUANTITY = /^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$/;
/** A label name: an optional DNS-subdomain prefix and "/", then 1-63 of [A-Za-z0-9._-], alphanumeric at both ends. */
const LABEL_NAME = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$/;
const PULL_POLICIES = ["Always", "Never", "IfNotPresent"] as const;

/** A service spec that breaks a rule: the message names the field ("presets.web.port must be …"). */
export class ServiceSpecError extends Error {}

/**
 * Pod label keys nobody may set through a spec. The Service selects its pod by
 * `app.kubernetes.io/name=<name>` (as the reference's controller does), so a pod of one caller
 * labelled with another service's name would receive that service's traffic; the group label
 * is what a gid from /auth puts there, so setting it would claim a group one is not in.
 */
export function reservedLabelKey(key: string): boolean {
  const prefix = key.includes("/") ? key.slice(0, key.indexOf("/")) : "";
  return (
    key === NAME_LABEL ||
    key === MANAGED_BY_LABEL ||
    key === GROUP_LABEL ||
    prefix === "qualified.io" ||
    prefix.endsWith(".qualified.io") ||
    prefix === "kubernetes.io" ||
    prefix.endsWith(".kubernetes.io") ||
    prefix === "k8s.io" ||
    prefix.endsWith(".k8s.io")
  );
}

/**
 * Checks a `spec.service` (from the presets file or a request) against the reference's types
 * (qualified/ephemeron src/resource/mod.rs: EphemeronService, HttpGetProbe, EnvVar) and the
 * rules Kubernetes applies to what it becomes, so a bad one is refused here, naming the field,
 * rather than by the API server of the services cluster or as a crash-looping pod.
 * `at` is the field's path in messages ("presets.web", "body/service").
 */
export function validateService(value: unknown, at: string): EphemeronService {
  const sep = at.includes("/") ? "/" : ".";
  const f = (name: string) => `${at}${sep}${name}`;
  const fail = (field: string, rule: string): never => {
    throw new ServiceSpecError(`${field} ${rule}`);
  };
  const o = object(value, at, fail);
  for (const key of Object.keys(o)) if (!SERVICE_FIELDS.has(key)) fail(f(key), "is not a known field");

  if (typeof o.image !== "string" || !/^[^\s\x00-\x1f]{1,512}$/.test(o.image))
    fail(f("image"), "must be an image reference (1-512 characters, no spaces)");
  if (!Number.isInteger(o.port) || (o.port as number) < 1 || (o.port as number) > 65535)
    fail(f("port"), "must be an integer from 1 to 65535");
  const service: EphemeronService = { image: o.image as string, port: o.port as number };

  if (o.command !== undefined) service.command = stringList(o.command, f("command"), fail);
  if (o.workingDir !== undefined) {
    if (typeof o.workingDir !== "string" || !o.workingDir.startsWith("/") || o.workingDir.length > 4096)
      fail(f("workingDir"), "must be an absolute path");
    service.workingDir = o.workingDir as string;
  }
  if (o.tlsSecretName !== undefined) {
    if (typeof o.tlsSecretName !== "string" || o.tlsSecretName.length > 253 || !DNS_SUBDOMAIN.test(o.tlsSecretName))
      fail(f("tlsSecretName"), "must be a Secret name (lower-case letters, digits, '-' and '.')");
    service.tlsSecretName = o.tlsSecretName as string;
  }
  if (o.ingressAnnotations !== undefined)
    service.ingressAnnotations = stringMap(o.ingressAnnotations, f("ingressAnnotations"), fail);
  if (o.readinessProbe !== undefined) {
    const p = object(o.readinessProbe, f("readinessProbe"), fail);
    const pf = (name: string) => `${f("readinessProbe")}${sep}${name}`;
    for (const key of Object.keys(p))
      if (!["path", "initialDelaySeconds", "periodSeconds", "timeoutSeconds"].includes(key))
        fail(pf(key), "is not a known field");
    if (typeof p.path !== "string" || !/^\/[^\s\x00-\x1f]{0,1023}$/.test(p.path))
      fail(pf("path"), 'must be a URL path starting with "/"');
    service.readinessProbe = { path: p.path as string };
    for (const [key, min] of [
      ["initialDelaySeconds", 0],
      ["periodSeconds", 1],
      ["timeoutSeconds", 1],
    ] as const) {
      if (p[key] === undefined) continue;
      if (!Number.isInteger(p[key]) || (p[key] as number) < min || (p[key] as number) > 3600)
        fail(pf(key), `must be an integer from ${min} to 3600`);
      service.readinessProbe[key] = p[key] as number;
    }
  }
  if (o.imagePullPolicy !== undefined) {
    if (!PULL_POLICIES.includes(o.imagePullPolicy as (typeof PULL_POLICIES)[number]))
      fail(f("imagePullPolicy"), `must be one of ${PULL_POLICIES.join(", ")}`);
    service.imagePullPolicy = o.imagePullPolicy as EphemeronService["imagePullPolicy"];
  }
  if (o.resources !== undefined) {
    const r = object(o.resources, f("resources"), fail);
    const rf = (name: string) => `${f("resources")}${sep}${name}`;
    service.resources = {};
    for (const key of Object.keys(r)) {
      if (key !== "limits" && key !== "requests") fail(rf(key), "is not a known field (limits, requests)");
      const m = object(r[key], rf(key), fail);
      const out: Record<string, string> = {};
      for (const [name, q] of Object.entries(m)) {
        const text = typeof q === "number" ? String(q) : q;
        if (!LABEL_NAME.test(name.split("/").at(-1)!) || typeof text !== "string" || !QUANTITY.test(text))
          fail(`${rf(key)}${sep}${name}`, 'must be a quantity such as "500m" or "128Mi"');
        out[name] = text as string;
      }
      service.resources[key as "limits" | "requests"] = out;
    }
  }
  if (o.env !== undefined) {
    if (!Array.isArray(o.env) || o.env.length > 256) fail(f("env"), "must be a list of {name, value} (at most 256)");
    service.env = (o.env as unknown[]).map((item, i) => {
      const e = object(item, `${f("env")}[${i}]`, fail);
      for (const key of Object.keys(e))
        if (key !== "name" && key !== "value") fail(`${f("env")}[${i}]${sep}${key}`, "is not a known field");
      // Kubernetes' rule for env names (validation.IsEnvVarName): printable ASCII, no "=".
      if (typeof e.name !== "string" || !/^[\x21-\x3c\x3e-\x7e]{1,256}$/.test(e.name))
        fail(`${f("env")}[${i}]${sep}name`, 'must be 1-256 printable characters without "=" or spaces');
      if (e.value !== undefined && (typeof e.value !== "string" || e.value.length > 65536))
        fail(`${f("env")}[${i}]${sep}value`, "must be a string");
      return e.value === undefined ? { name: e.name as string } : { name: e.name as string, value: e.value as string };
    });
  }
  if (o.podLabels !== undefined) {
    const labels = stringMap(o.podLabels, f("podLabels"), fail);
    for (const [key, v] of Object.entries(labels)) {
      const [prefix, name] = key.includes("/")
        ? [key.slice(0, key.indexOf("/")), key.slice(key.indexOf("/") + 1)]
        : ["", key];
      if ((prefix && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) || !LABEL_NAME.test(name))
        fail(`${f("podLabels")}${sep}${key}`, "is not a valid label name");
      if (reservedLabelKey(key))
        fail(`${f("podLabels")}${sep}${key}`, "is reserved (the controller and /auth groups set it)");
      if (!LABEL_VALUE.test(v))
        fail(`${f("podLabels")}${sep}${key}`, "must be a label value (at most 63 letters, digits, '-', '_', '.')");
    }
    service.podLabels = labels;
  }
  // What is accepted here must be what the controller acts on, or a service would be made
  // only to be reported InvalidSpec: the controller's own check has the last word.
  const controllerSays = validateEphemeron({
    metadata: { name: "service" },
    spec: { expirationTime: new Date(0).toISOString(), service },
  });
  if (controllerSays.length > 0) {
    const [field, ...rule] = controllerSays[0].replace(/^spec\.service\./, "").split(": ");
    fail(`${at}${sep}${field}`, rule.join(": "));
  }
  return service;
}

type Fail = (field: string, rule: string) => never;

function object(value: unknown, field: string, fail: Fail): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) fail(field, "must be an object");
  return value as Record<string, unknown>;
}

function stringList(value: unknown, field: string, fail: Fail): string[] {
  if (!Array.isArray(value) || value.length > 256 || value.some((s) => typeof s !== "string" || s.length > 65536))
    fail(field, "must be a list of strings");
  return [...(value as string[])];
}

function stringMap(value: unknown, field: string, fail: Fail): Record<string, string> {
  const o = object(value, field, fail);
  if (Object.keys(o).length > 64) fail(field, "may have at most 64 entries");
  const sep = field.includes("/") ? "/" : ".";
  for (const [key, v] of Object.entries(o)) if (typeof v !== "string") fail(`${field}${sep}${key}`, "must be a string");
  return { ...(o as Record<string, string>) };
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
