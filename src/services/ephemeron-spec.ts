import { GROUP_LABEL, MANAGED_BY_LABEL, NAME_LABEL, type Ephemeron } from "./ephemeron-types.js";

/**
 * Validation of an Ephemeron as the controller sees it: whatever a tenant wrote, through a
 * CRD whose schema the tenant may have changed (tenants may edit CRDs in their cluster), so
 * nothing here trusts the apiserver's own validation. Each problem names its field, and a
 * bad object gets conditions with reason InvalidSpec instead of a crash or a retry loop.
 */

/** DNS label (RFC 1123), ≤ 63: the name becomes the first label of its host name and names its Pod and Service. */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** DNS subdomain (a Secret's name, a label key's prefix). */
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
/** Bounds on what one spec may carry (a request body, a tenant's object): none is near what a service needs. */
const MAX_ITEMS = 256;
const MAX_MAP_ENTRIES = 64;
const MAX_STRING = 65_536;
const MAX_PROBE_SECONDS = 3600;
export const PULL_POLICIES = ["Always", "Never", "IfNotPresent"] as const;

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
const PROBE_FIELDS: ReadonlySet<string> = new Set(["path", "initialDelaySeconds", "periodSeconds", "timeoutSeconds"]);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const present = (v: unknown) => v !== undefined && v !== null;

function validLabelKey(key: string): boolean {
  const slash = key.lastIndexOf("/");
  if (slash < 0) return LABEL_NAME.test(key);
  const prefix = key.slice(0, slash);
  return DNS_SUBDOMAIN.test(prefix) && LABEL_NAME.test(key.slice(slash + 1));
}

/**
 * Pod label keys the services API refuses. The Service selects its pod by
 * `app.kubernetes.io/name=<name>` (as the reference's controller does), so a pod of one caller
 * labelled with another service's name would receive that service's traffic; the group label
 * is what a gid from /auth puts there, so setting it would claim a group one is not in.
 * The controller itself refuses only its own two (a tenant's objects may carry a group).
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

/** One problem with a `spec.service`: where (its path under it) and the rule it breaks. */
export interface ServiceProblem {
  path: (string | number)[];
  rule: string;
}

/** A problem's field as text: `at` joined to its path by `sep` ("spec.service.env[0].name", "body/service/port"). */
export function fieldName(at: string, path: (string | number)[], sep: "." | "/"): string {
  return path.reduce<string>((out, p) => (typeof p === "number" ? `${out}[${p}]` : `${out}${sep}${p}`), at);
}

/**
 * The one check of a `spec.service`, against the reference's types (qualified/ephemeron
 * src/resource/mod.rs: EphemeronService, HttpGetProbe, EnvVar) and the rules Kubernetes applies
 * to what it becomes: the controller runs it on every object, the services API on every request
 * and preset, so nothing the API accepts is then reported InvalidSpec. `api` adds the API's one
 * extra rule: the reserved label keys (reservedLabelKey). Never throws.
 */
export function serviceProblems(service: unknown, o: { api?: boolean } = {}): ServiceProblem[] {
  const problems: ServiceProblem[] = [];
  const bad = (path: (string | number)[], rule: string) => problems.push({ path, rule });
  if (!isObject(service)) return [{ path: [], rule: "must be an object" }];
  const stringMap = (value: unknown, path: string[]): Record<string, unknown> => {
    if (!isObject(value)) return (bad(path, "must be a map of strings"), {});
    if (Object.keys(value).length > MAX_MAP_ENTRIES) bad(path, `may have at most ${MAX_MAP_ENTRIES} entries`);
    for (const [k, v] of Object.entries(value)) if (typeof v !== "string") bad([...path, k], "must be a string");
    return value;
  };
  const integer = (value: unknown, path: string[], min: number, max: number) => {
    if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max)
      bad(path, `must be an integer from ${min} to ${max}`);
  };

  for (const key of Object.keys(service)) if (!SERVICE_FIELDS.has(key)) bad([key], "is not a known field");
  if (typeof service.image !== "string" || !IMAGE.test(service.image))
    bad(["image"], "must be an image reference (1-1024 characters, no spaces)");
  integer(service.port, ["port"], 1, 65535);

  const command = service.command;
  if (
    present(command) &&
    (!Array.isArray(command) ||
      command.length > MAX_ITEMS ||
      command.some((c) => typeof c !== "string" || c.length > MAX_STRING))
  )
    bad(["command"], `must be a list of strings (at most ${MAX_ITEMS})`);
  const dir = service.workingDir;
  if (present(dir) && (typeof dir !== "string" || !dir.startsWith("/") || dir.length > 4096))
    bad(["workingDir"], "must be an absolute path");
  const secret = service.tlsSecretName;
  if (present(secret) && (typeof secret !== "string" || !DNS_SUBDOMAIN.test(secret)))
    bad(["tlsSecretName"], "must name a Secret (a DNS subdomain) in namespace default");
  if (present(service.ingressAnnotations)) stringMap(service.ingressAnnotations, ["ingressAnnotations"]);
  if (present(service.imagePullPolicy) && !PULL_POLICIES.includes(service.imagePullPolicy as "Always"))
    bad(["imagePullPolicy"], `must be one of ${PULL_POLICIES.join(", ")}`);

  const probe = service.readinessProbe;
  if (present(probe)) {
    if (!isObject(probe)) bad(["readinessProbe"], "must be an object");
    else {
      for (const key of Object.keys(probe))
        if (!PROBE_FIELDS.has(key)) bad(["readinessProbe", key], "is not a known field");
      if (typeof probe.path !== "string" || !HTTP_PATH.test(probe.path))
        bad(["readinessProbe", "path"], 'must be a URL path starting with "/" (printable characters, no spaces)');
      for (const [key, min] of [
        ["initialDelaySeconds", 0],
        ["periodSeconds", 1],
        ["timeoutSeconds", 1],
      ] as const)
        if (present(probe[key])) integer(probe[key], ["readinessProbe", key], min, MAX_PROBE_SECONDS);
    }
  }

  const resources = service.resources;
  if (present(resources)) {
    if (!isObject(resources)) bad(["resources"], "must be an object");
    else
      for (const [kind, values] of Object.entries(resources)) {
        if (kind !== "limits" && kind !== "requests")
          bad(["resources", kind], "is not a known field (limits, requests)");
        else if (present(values) && !isObject(values)) bad(["resources", kind], "must be a map of quantities");
        else
          for (const [res, q] of Object.entries(values ?? {}))
            if (
              !validLabelKey(res) ||
              !((typeof q === "string" && QUANTITY.test(q)) || (typeof q === "number" && q >= 0))
            )
              bad(["resources", kind, res], 'must be a resource quantity such as "500m" or "128Mi"');
      }
  }

  const env = service.env;
  if (present(env)) {
    if (!Array.isArray(env) || env.length > MAX_ITEMS)
      bad(["env"], `must be a list of {name, value} (at most ${MAX_ITEMS})`);
    else
      env.forEach((e: unknown, i) => {
        if (!isObject(e)) return bad(["env", i], "must be an object {name, value}");
        if (typeof e.name !== "string" || !ENV_NAME.test(e.name) || e.name.length > 256)
          bad(["env", i, "name"], "must be letters, digits, '_', '-' or '.', not starting with a digit");
        if (present(e.value) && (typeof e.value !== "string" || e.value.length > MAX_STRING))
          bad(["env", i, "value"], "must be a string");
        // valueFrom would let the Pod read Secrets and ConfigMaps by the controller's (admin) hand.
        for (const key of Object.keys(e))
          if (key !== "name" && key !== "value")
            bad(["env", i, key], "is not a known field (only name and value are allowed)");
      });
  }

  if (present(service.podLabels))
    for (const [key, value] of Object.entries(stringMap(service.podLabels, ["podLabels"]))) {
      if (!validLabelKey(key)) bad(["podLabels", key], "is not a valid label key");
      else if (typeof value === "string" && !LABEL_VALUE.test(value))
        bad(["podLabels", key], "must be a label value (at most 63 letters, digits, '-', '_', '.')");
      // The controller finds its Pods by these (and its Service selects by them): they stay its own.
      if (key === NAME_LABEL || key === MANAGED_BY_LABEL || (o.api && reservedLabelKey(key)))
        bad(["podLabels", key], "is reserved (set by the controller or by /auth groups) and cannot be overridden");
    }
  return problems;
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
  for (const p of serviceProblems(service)) problems.push(`${fieldName("spec.service", p.path, ".")}: ${p.rule}`);
  return problems;
}

/** The object typed, once validateEphemeron found nothing wrong with it. */
export function asValidEphemeron(obj: unknown): Ephemeron | undefined {
  return validateEphemeron(obj).length === 0 ? (obj as Ephemeron) : undefined;
}
