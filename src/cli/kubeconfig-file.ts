import { existsSync } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { TempkubeError } from "../util/errors.js";

/** yaml costs ~25 ms to load: only commands that read or write a kubeconfig pay it. */
const loadYaml = async () => (await import("yaml")).default;

/**
 * The user's own kubeconfig, as kubectl finds it: the first file of $KUBECONFIG, else
 * ~/.kube/config. Merging adds (or replaces) a cluster's entries by name and makes its
 * context current; removing takes them out again. Other entries are never touched.
 */
export function userKubeconfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const first = (env.KUBECONFIG ?? "").split(":").find(Boolean);
  return first ?? join(homedir(), ".kube", "config");
}

type Named = { name: string; [k: string]: unknown };
interface Kubeconfig {
  apiVersion?: string;
  kind?: string;
  clusters?: Named[];
  contexts?: Named[];
  users?: Named[];
  "current-context"?: string;
  [k: string]: unknown;
}

async function load(path: string): Promise<Kubeconfig> {
  if (!existsSync(path)) return { apiVersion: "v1", kind: "Config", clusters: [], contexts: [], users: [] };
  const text = await readFile(path, "utf8");
  const YAML = await loadYaml();
  let parsed: unknown;
  try {
    parsed = YAML.parse(text) ?? {};
  } catch (err) {
    throw new TempkubeError(
      "invalid-input",
      `${path} is not a readable kubeconfig (${(err as Error).message}); not changed`,
    );
  }
  if (typeof parsed !== "object" || Array.isArray(parsed))
    throw new TempkubeError("invalid-input", `${path} is not a kubeconfig; not changed`);
  return parsed as Kubeconfig;
}

/** Written to a temporary file and renamed: a crash never leaves half a kubeconfig. */
async function save(path: string, config: Kubeconfig): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tempkube-${process.pid}`;
  await writeFile(tmp, (await loadYaml()).stringify(config), { mode: 0o600 });
  await rename(tmp, path);
}

function upsert(list: Named[] | undefined, entries: Named[] | undefined): Named[] {
  const out = (list ?? []).filter((e) => !(entries ?? []).some((n) => n.name === e.name));
  return [...out, ...(entries ?? [])];
}

/** Merges `kubeconfigYaml` into the file at `path` and makes its context current; returns the context name. */
export async function mergeKubeconfig(path: string, kubeconfigYaml: string): Promise<string> {
  const incoming = (await loadYaml()).parse(kubeconfigYaml) as Kubeconfig;
  const target = await load(path);
  target.clusters = upsert(target.clusters, incoming.clusters);
  target.users = upsert(target.users, incoming.users);
  target.contexts = upsert(target.contexts, incoming.contexts);
  const context = incoming["current-context"] ?? incoming.contexts?.[0]?.name;
  if (context) target["current-context"] = context;
  await save(path, target);
  return context ?? "";
}

/** Removes the cluster's entries (named `tempkube-<id>` or `tempkube-<id>-…`); returns how many went. */
export async function removeFromKubeconfig(path: string, clusterId: string): Promise<number> {
  if (!existsSync(path)) return 0;
  const config = await load(path);
  const ours = (name: string | undefined) =>
    name === `tempkube-${clusterId}` || !!name?.startsWith(`tempkube-${clusterId}-`);
  let removed = 0;
  for (const key of ["clusters", "users", "contexts"] as const) {
    const before = config[key] ?? [];
    config[key] = before.filter((e) => !ours(e.name));
    removed += before.length - config[key].length;
  }
  if (ours(config["current-context"])) config["current-context"] = "";
  if (removed) await save(path, config);
  return removed;
}
