import { MANAGED_BY_LABEL, NAME_LABEL, type Ephemeron } from "./ephemeron-types.js";

/**
 * Validation of an Ephemeron as the controller sees it: whatever a tenant wrote, through a
 * CRD whose schema the tenant may have changed (tenants may edit CRDs in their cluster), so
 * nothing here trusts the apiserver's own validation. Each problem names its field, and a
 * bad object gets conditions with reason InvalidSpec instead of a crash or a retry loop.
 */

/** DNS label (RFC 1123), ≤ 63: the name becomes the first label of its host name and names its Pod and Service. */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** DNS subdomain (a Secret's name). */
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** RFC 3339 date-time, as the CRD's `format: date-time` (and the reference's chrono DateTime<Utc>) wants. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
/** Env var names as Kubernetes validated them before 1.34 relaxed it (C identifiers plus `-` and `.`). */
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
/** A label key: optional DNS-subdomain prefix, then a name of ≤ 63 (apimachinery validation.IsQualifiedName). */
const LABEL_NAME = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$/;
const LABEL_VALUE = /^(([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?)$/;
/** resource.Quantity's syntax (apimachinery pkg/api/resource/quantity.go). */
const QUANTITY = /^[+-]?(\d+(\.\d*)?|\.\d+)(([KMGTPE]i)|[mkMGTPE]|[eE][+-]?\d+)?$/;
/** Image references: no whitespace or control characters; the runtime parses the rest. */
const IMAGE = /^[^\s\x00-\x1f\x7f]{1,1024}$/;
/** A URL path: starts with `/`, printable ASCII without spaces (it goes into a request line). */
const HTTP_PATH = /^\/[\x21-\x7e]{0,2047}$/;
const INT32_MAX = 2 ** 31 - 1;

/** The fields of `spec.service` (the reference's EphemeronService). */
export const SERVICE_FIELDS: ReadonlySet<string> = new Set([
  "image",
  "port",
  "command",
  "workingDir",
  "tlsSecretName",
  "ingressAnnotations",
  "readinessProbe",
  "imagePullPolicy",
  "resources",
  "env",
  "podLabels",
]);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const present = (v: unknown) => v !== undefined && v !== null;

function validLabelKey(key: string): boolean {
  const slash = key.lastIndexOf("/");
  if (slash < 0) return LABEL_NAME.test(key);
  const prefix = key.slice(0, slash);
  return DNS_SUBDOMAIN.test(prefix) && LABEL_NAME.test(key.slice(slash + 1));
}

function stringMap(value: unknown, field: string, problems: string[]): Record<string, string> | undefined {
  if (!present(value)) return undefined;
  if (!isObject(value)) {
    problems.push(`${field}: must be a map of strings`);
    return undefined;
  }
  for (const [k, v] of Object.entries(value))
    if (typeof v !== "string") problems.push(`${field}.${k}: must be a string`);
  return value as Record<string, string>;
}

function integer(value: unknown, field: string, min: number, max: number, problems: string[]): void {
  if (!present(value)) return;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max)
    problems.push(`${field}: must be an integer from ${min} to ${max}`);
}

/** The expiry in epoch ms, or undefined when the field is missing or does not parse. */
export function expirationMs(eph: { spec?: { expirationTime?: unknown } }): number | undefined {
  const t = eph.spec?.expirationTime;
  if (typeof t !== "string" || !RFC3339.test(t)) return undefined;
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? undefined : ms;
}

/** Problems with an Ephemeron, each naming its field; empty when the controller can act on it. */
export function validateEphemeron(obj: unknown): string[] {
  const problems: string[] = [];
  if (!isObject(obj)) return ["the object is not a JSON object"];
  const meta = isObject(obj.metadata) ? obj.metadata : {};
  const name = meta.name;
  if (typeof name !== "string" || !DNS_LABEL.test(name))
    problems.push(
      "metadata.name: must be a DNS label (lowercase letters, digits and '-', at most 63, starting and ending with a letter or digit): it becomes the first label of the service's host name",
    );
  const spec = obj.spec;
  if (!isObject(spec)) return [...problems, "spec: is required"];
  if (typeof spec.expirationTime !== "string")
    problems.push("spec.expirationTime: is required (an RFC 3339 date-time)");
  else if (expirationMs({ spec }) === undefined)
    problems.push(`spec.expirationTime: ${JSON.stringify(spec.expirationTime)} is not an RFC 3339 date-time`);
  const service = spec.service;
  if (!isObject(service)) return [...problems, "spec.service: is required"];
  const f = (name: string) => `spec.service.${name}`;

  for (const key of Object.keys(service))
    if (!SERVICE_FIELDS.has(key)) problems.push(`${f(key)}: is not a field of an Ephemeron's service`);

  if (typeof service.image !== "string" || !IMAGE.test(service.image))
    problems.push(`${f("image")}: is required (an image reference, no spaces)`);
  integer(service.port, f("port"), 1, 65535, problems);
  if (!present(service.port)) problems.push(`${f("port")}: is required`);

  if (
    present(service.command) &&
    (!Array.isArray(service.command) || !service.command.every((c) => typeof c === "string"))
  )
    problems.push(`${f("command")}: must be a list of strings`);
  if (present(service.workingDir) && (typeof service.workingDir !== "string" || !service.workingDir.startsWith("/")))
    problems.push(`${f("workingDir")}: must be an absolute path`);
  if (
    present(service.tlsSecretName) &&
    (typeof service.tlsSecretName !== "string" || !DNS_SUBDOMAIN.test(service.tlsSecretName))
  )
    problems.push(`${f("tlsSecretName")}: must name a Secret (a DNS subdomain) in namespace default`);
  stringMap(service.ingressAnnotations, f("ingressAnnotations"), problems);

  if (
    present(service.imagePullPolicy) &&
    !["Always", "Never", "IfNotPresent"].includes(service.imagePullPolicy as string)
  )
    problems.push(`${f("imagePullPolicy")}: must be Always, Never or IfNotPresent`);

  const probe = service.readinessProbe;
  if (present(probe)) {
    if (!isObject(probe)) problems.push(`${f("readinessProbe")}: must be an object`);
    else {
      if (typeof probe.path !== "string" || !HTTP_PATH.test(probe.path))
        problems.push(
          `${f("readinessProbe.path")}: must be a URL path starting with '/' (printable characters, no spaces)`,
        );
      integer(probe.initialDelaySeconds, f("readinessProbe.initialDelaySeconds"), 0, INT32_MAX, problems);
      integer(probe.periodSeconds, f("readinessProbe.periodSeconds"), 1, INT32_MAX, problems);
      integer(probe.timeoutSeconds, f("readinessProbe.timeoutSeconds"), 1, INT32_MAX, problems);
    }
  }

  const resources = service.resources;
  if (present(resources)) {
    if (!isObject(resources)) problems.push(`${f("resources")}: must be an object`);
    else
      for (const [kind, values] of Object.entries(resources)) {
        const field = f(`resources.${kind}`);
        if (kind !== "limits" && kind !== "requests") problems.push(`${field}: only limits and requests are allowed`);
        else if (present(values) && !isObject(values)) problems.push(`${field}: must be a map of quantities`);
        else
          for (const [res, q] of Object.entries(values ?? {}))
            if (
              !validLabelKey(res) ||
              !((typeof q === "string" && QUANTITY.test(q)) || (typeof q === "number" && q >= 0))
            )
              problems.push(`${field}.${res}: must be a resource quantity such as 100m or 64Mi`);
      }
  }

  const env = service.env;
  if (present(env)) {
    if (!Array.isArray(env)) problems.push(`${f("env")}: must be a list of {name, value}`);
    else
      env.forEach((e: unknown, i) => {
        const field = f(`env[${i}]`);
        if (!isObject(e)) return problems.push(`${field}: must be an object {name, value}`);
        if (typeof e.name !== "string" || !ENV_NAME.test(e.name))
          problems.push(`${field}.name: must be letters, digits, '_', '-' or '.', not starting with a digit`);
        if (present(e.value) && typeof e.value !== "string") problems.push(`${field}.value: must be a string`);
        // valueFrom would let the Pod read Secrets and ConfigMaps by the controller's (admin) hand.
        for (const key of Object.keys(e))
          if (key !== "name" && key !== "value") problems.push(`${field}.${key}: only name and value are allowed`);
      });
  }

  const podLabels = stringMap(service.podLabels, f("podLabels"), problems);
  for (const [key, value] of Object.entries(podLabels ?? {})) {
    if (!validLabelKey(key)) problems.push(`${f("podLabels")}: ${JSON.stringify(key)} is not a valid label key`);
    else if (typeof value === "string" && !LABEL_VALUE.test(value))
      problems.push(`${f("podLabels")}.${key}: ${JSON.stringify(value)} is not a valid label value`);
    // The controller finds its Pods by these (and its Service selects by them): they stay its own.
    if (key === NAME_LABEL || key === MANAGED_BY_LABEL)
      problems.push(`${f("podLabels")}.${key}: is set by the controller and cannot be overridden`);
  }
  return problems;
}

/** The object typed, once validateEphemeron found nothing wrong with it. */
export function asValidEphemeron(obj: unknown): Ephemeron | undefined {
  return validateEphemeron(obj).length === 0 ? (obj as Ephemeron) : undefined;
}
