import { readFile } from "node:fs/promises";
import { TempkubeError } from "../util/errors.js";
import type { EphemeronService } from "./ephemeron-types.js";
import { ServiceSpecError, validateService } from "./service-spec.js";

/**
 * `--services-config`: the reference's API config (qualified/ephemeron src/api/mod.rs
 * `Config`, k8s/api/config.yaml), so a file written for it works unchanged:
 *
 *     presets:
 *       nginx: { image: nginx, port: 80, readinessProbe: { path: / } }
 *     apps:
 *       example: apikey        # app name → the key its backend trades for tokens at /auth
 */
export interface ServicesConfig {
  presets: ReadonlyMap<string, EphemeronService>;
  apps: ReadonlyMap<string, string>;
}

export const EMPTY_SERVICES_CONFIG: ServicesConfig = { presets: new Map(), apps: new Map() };

/** Preset names travel in requests and messages; app names end up in label values (`gid.app`, at most 63). */
const PRESET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
/**
 * App names become the suffix of `sub` (`uid.app`) and of the group label value (`gid.app`):
 * label-value characters, and short enough to leave room for a uid (the reference's max_id_len
 * is 63 − (len(app) + 1), src/api/auth/mod.rs).
 */
const APP_NAME = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,59}[A-Za-z0-9])?$/;

/** Reads and checks the file; every error names the file and the field. */
export async function loadServicesConfig(file: string): Promise<ServicesConfig> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new TempkubeError("invalid-input", `--services-config ${file}: cannot read it (${e.code ?? e.message})`);
  }
  return parseServicesConfig(text, file);
}

export async function parseServicesConfig(text: string, source: string): Promise<ServicesConfig> {
  const YAML = (await import("yaml")).default;
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    throw new TempkubeError("invalid-input", `${source}: not valid YAML: ${(err as Error).message}`);
  }
  const fail = (message: string): never => {
    throw new TempkubeError("invalid-input", `${source}: ${message}`);
  };
  if (doc === null || doc === undefined) return EMPTY_SERVICES_CONFIG;
  if (typeof doc !== "object" || Array.isArray(doc)) fail("must be a mapping with presets: and apps:");
  const top = doc as Record<string, unknown>;
  for (const key of Object.keys(top))
    if (key !== "presets" && key !== "apps") fail(`${key} is not a known field (presets, apps)`);

  const presets = new Map<string, EphemeronService>();
  for (const [name, spec] of Object.entries(mapping(top.presets, "presets", fail))) {
    if (!PRESET_NAME.test(name)) fail(`presets.${name}: a preset name is 1-63 letters, digits, '.', '_' or '-'`);
    try {
      presets.set(name, validateService(spec, `presets.${name}`));
    } catch (err) {
      if (err instanceof ServiceSpecError) fail(err.message);
      throw err;
    }
  }
  const apps = new Map<string, string>();
  for (const [name, key] of Object.entries(mapping(top.apps, "apps", fail))) {
    if (!APP_NAME.test(name))
      fail(`apps.${name}: an app name is 1-61 letters, digits, '.', '_' or '-' (it ends every uid's label value)`);
    if (typeof key !== "string" || key.length === 0) fail(`apps.${name} must be the app's key (a non-empty string)`);
    apps.set(name, key as string);
  }
  return { presets, apps };
}

function mapping(value: unknown, field: string, fail: (m: string) => never): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (typeof value !== "object" || Array.isArray(value)) fail(`${field} must be a mapping of name → value`);
  return value as Record<string, unknown>;
}
