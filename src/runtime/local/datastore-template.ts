import SQLite from "better-sqlite3";
import { createHash } from "node:crypto";
import { existsSync, openSync, closeSync } from "node:fs";
import { copyFile, mkdir, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { KubernetesRelease } from "../../setup/catalogue.js";
import { kubernetesBinary } from "../../setup/artifact-paths.js";
import { TempkubeError } from "../../util/errors.js";
import { killAndWait, spawnTiedToParent } from "../../util/exec.js";
import { withFileLock } from "../../util/lock.js";
import { coreDnsWorkload } from "./addon-manifests.js";
import { applyManifests } from "./apply-manifests.js";
import { BareApiServer } from "./bare-apiserver.js";
import { apiServerFeatureArgs } from "./component-commands.js";
import type { KubeApi } from "./kube-api.js";
import { waitFor } from "./wait.js";

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
 * kube-controller-manager waits for those hooks too (it polls /healthz), and CoreDNS's Pod
 * comes from its controllers (Deployment → ReplicaSet → Pod), so a new cluster's DNS would
 * wait for them. The template is therefore made with a real kube-controller-manager run
 * against it: it holds CoreDNS's Deployment, the ReplicaSet and the Pod (not scheduled)
 * that the controllers made from it, and the ServiceAccounts they made (each namespace's
 * `default`, one per controller). A new cluster's scheduler binds that Pod as soon as a
 * node takes pods; its own controller manager finds all of it in place.
 *
 * Only these cluster-independent objects are kept; namespaces (whose UIDs tools use as a
 * cluster's identity), Services (their addresses live in the allocator's objects), leases,
 * events, endpoints and CA bundles (`kube-root-ca.crt`) are made fresh by each cluster.
 */
const KEPT_PREFIXES = [
  "/registry/clusterroles/",
  "/registry/clusterrolebindings/",
  "/registry/roles/",
  "/registry/rolebindings/",
  "/registry/priorityclasses/",
  "/registry/flowschemas/",
  "/registry/prioritylevelconfigurations/",
  "/registry/apiregistration.k8s.io/apiservices/",
  "/registry/serviceaccounts/",
  "/registry/configmaps/kube-system/coredns",
  "/registry/deployments/kube-system/coredns",
  "/registry/replicasets/kube-system/coredns-",
  "/registry/pods/kube-system/coredns-",
];
/**
 * The apiserver's readiness without those hooks: what the rest of a cluster waits for
 * before it starts. Readiness of the cluster still waits for the full /readyz at the end.
 */
export const READYZ_BEFORE_BOOTSTRAP_HOOKS = `/readyz?${[
  "poststarthook/rbac/bootstrap-roles",
  "poststarthook/scheduling/bootstrap-system-priority-classes",
]
  .map((h) => `exclude=${h}`)
  .join("&")}`;

/** kine's own bookkeeping row. */
const KINE_KEYS = ["compact_rev_key"];

/** The template for this release (built on first use, under a lock); copy it, never open it. */
export async function ensureDatastoreTemplate(baseDir: string, release: KubernetesRelease): Promise<string> {
  const key = await templateKey(release);
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
    try {
      await applyManifests(release, bare.kubeconfigPath, coreDnsWorkload());
      await runControllersOnce(release, bare, join(scratch, "kube-controller-manager.log"));
      // Its status (conditions with this moment's timestamps, progress deadline included)
      // is the cluster's controller manager's to write.
      await bare.api.patch("/apis/apps/v1/namespaces/kube-system/deployments/coredns/status", { status: null });
    } finally {
      await bare.stop();
    }
    pruneToBootstrapObjects(db);
    await rename(scratch, join(templates, key));
    // Older templates of this release are stale; other releases' are not.
    for (const other of await readdir(templates)) {
      if (other !== key && other.startsWith(`${release.version}-`))
        await rm(join(templates, other), { recursive: true, force: true });
    }
    return file;
  });
}

/** Other binaries, or other addon manifests, make other objects: the key follows all of them. */
async function templateKey(release: KubernetesRelease): Promise<string> {
  const hash = createHash("sha256").update(coreDnsWorkload());
  for (const component of ["kube-apiserver", "kube-controller-manager"] as const) {
    const binary = await stat(kubernetesBinary(release, component));
    hash.update(`${component}:${binary.size}:${Math.floor(binary.mtimeMs)}`);
  }
  return `${release.version}-${hash.digest("hex").slice(0, 16)}`;
}

/**
 * kube-controller-manager, as a cluster runs it (a credential per controller), until it has
 * made CoreDNS's Pod and its ServiceAccounts stop changing, i.e. every controller started.
 */
async function runControllersOnce(release: KubernetesRelease, bare: BareApiServer, logFile: string): Promise<void> {
  const log = openSync(logFile, "w");
  const kcm = spawnTiedToParent(
    kubernetesBinary(release, "kube-controller-manager"),
    [
      `--kubeconfig=${bare.kubeconfigPath}`,
      "--secure-port=0",
      "--leader-elect=false",
      "--use-service-account-credentials=true",
      "--kube-api-qps=200",
      "--kube-api-burst=400",
      `--service-account-private-key-file=${bare.dir}/sa.key`,
      `--root-ca-file=${bare.dir}/ca.crt`,
      "--profiling=false",
    ],
    { stdio: ["ignore", log, log] },
  ).on("error", () => undefined);
  closeSync(log);
  try {
    await waitFor("CoreDNS's Pod from the controllers", () => podMade(bare.api), 60_000, 100);
    let last = "";
    let stableSince = Date.now();
    await waitFor(
      "the controllers' ServiceAccounts",
      async () => {
        const names = await serviceAccountNames(bare.api);
        if (names !== last) [last, stableSince] = [names, Date.now()];
        return names.includes("default/default") && Date.now() - stableSince > 2000;
      },
      60_000,
      200,
    );
  } catch (err) {
    const tail = (await readFile(logFile, "utf8").catch(() => "")).trim().split("\n").slice(-10).join("\n");
    throw new TempkubeError(
      "runtime",
      `building the datastore template: ${(err as Error).message}\nkube-controller-manager (last lines):\n${tail}`,
    );
  } finally {
    await killAndWait(kcm);
  }
}

async function podMade(api: KubeApi): Promise<boolean> {
  const res = await api
    .get<{ items?: unknown[] }>("/api/v1/namespaces/kube-system/pods?labelSelector=k8s-app%3Dkube-dns")
    .catch(() => undefined);
  return (res?.body?.items?.length ?? 0) > 0;
}

async function serviceAccountNames(api: KubeApi): Promise<string> {
  type List = { items?: { metadata: { namespace: string; name: string } }[] };
  const res = await api.get<List>("/api/v1/serviceaccounts").catch(() => undefined);
  return (res?.body?.items ?? [])
    .map((i) => `${i.metadata.namespace}/${i.metadata.name}`)
    .sort()
    .join(",");
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
