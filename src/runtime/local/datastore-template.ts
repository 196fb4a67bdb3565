import SQLite from "better-sqlite3";
import { existsSync } from "node:fs";
import { copyFile, mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { KubernetesRelease } from "../../setup/catalogue.js";
import { kubernetesBinary } from "../../setup/installer.js";
import { withFileLock } from "../../util/lock.js";
import { BareApiServer } from "./bare-apiserver.js";
import { apiServerFeatureArgs } from "./component-commands.js";

/**
 * A new apiserver on an empty datastore spends about 1.5 s writing its bootstrap policy
 * (~140 RBAC objects, priority classes, flow-control configuration), and its post-start
 * hooks for it begin with a 1 s sleep (wait.Poll in storage_rbac.go and
 * storage_scheduling.go), so /readyz says no for ≥ 2 s. These objects are the same in
 * every cluster of a release: they are written once per host into a template datastore, and
 * each new cluster's kine starts from a copy. The hooks still run and reconcile (anything
 * missing is written), but the rights that the controllers and kubelets need are there
 * from the apiserver's first request, so the rest of the cluster need not wait for them.
 *
 * Only these cluster-independent objects are kept; namespaces (whose UIDs tools use as a
 * cluster's identity), Services, leases and CA bundles are made fresh by each apiserver.
 */
const KEPT_PREFIXES = [
  "/registry/clusterroles/", "/registry/clusterrolebindings/", "/registry/roles/", "/registry/rolebindings/",
  "/registry/priorityclasses/", "/registry/flowschemas/", "/registry/prioritylevelconfigurations/",
  "/registry/apiregistration.k8s.io/apiservices/",
];
/**
 * The apiserver's readiness without those hooks: what the rest of a cluster waits for
 * before it starts. Readiness of the cluster still waits for the full /readyz at the end.
 */
export const READYZ_BEFORE_BOOTSTRAP_HOOKS = `/readyz?${["poststarthook/rbac/bootstrap-roles", "poststarthook/scheduling/bootstrap-system-priority-classes"]
  .map((h) => `exclude=${h}`).join("&")}`;

/** kine's own bookkeeping row. */
const KINE_KEYS = ["compact_rev_key"];

/** The template for this release (built on first use, under a lock); copy it, never open it. */
export async function ensureDatastoreTemplate(baseDir: string, release: KubernetesRelease): Promise<string> {
  // A rebuilt apiserver binary may bootstrap other objects: the key follows the binary.
  const binary = await stat(kubernetesBinary(release, "kube-apiserver"));
  const key = `${release.version}-${binary.size}-${Math.floor(binary.mtimeMs)}`;
  const templates = join(baseDir, "datastore-templates");
  const file = join(templates, key, "state.db");
  if (existsSync(file)) return file;
  return withFileLock(join(templates, "build.lock"), "the datastore template", async () => {
    if (existsSync(file)) return file;
    const scratch = join(templates, `${key}.building`);
    await rm(scratch, { recursive: true, force: true });
    await mkdir(scratch, { recursive: true });
    const db = join(scratch, "state.db");
    const bare = await BareApiServer.start(release, { datastoreFile: db, extraArgs: apiServerFeatureArgs(release) });
    await bare.stop();
    pruneToBootstrapObjects(db);
    await rename(scratch, join(templates, key));
    for (const other of await readdir(templates)) {
      if (other !== key && !other.endsWith(".lock")) await rm(join(templates, other), { recursive: true, force: true });
    }
    return file;
  });
}

/** Deletes every row but the kept objects; leaves one self-contained file (no WAL beside it). */
export function pruneToBootstrapObjects(dbFile: string): void {
  const db = new SQLite(dbFile);
  try {
    const keep = [...KEPT_PREFIXES.map(() => "name GLOB ?"), ...KINE_KEYS.map(() => "name = ?")].join(" OR ");
    db.prepare(`DELETE FROM kine WHERE NOT (${keep})`).run(...KEPT_PREFIXES.map((p) => `${p}*`), ...KINE_KEYS);
    db.exec("VACUUM");
  } finally {
    db.close();
  }
}

/** A new cluster's datastore starts as a copy of the template. */
export async function seedDatastore(template: string, kineDir: string): Promise<void> {
  await mkdir(kineDir, { recursive: true });
  await copyFile(template, join(kineDir, "state.db"));
}
