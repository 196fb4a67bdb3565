import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, rm, stat, writeFile, copyFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { unmountAll } from "../../host/mounts.js";
import { run, spawnTiedToParent } from "../../util/exec.js";
import { withFileLock } from "../../util/lock.js";
import { nodeContainerRuntime } from "./node-container-runtime.js";
import { waitFor } from "./wait.js";

/**
 * Importing images into every new node's containerd costs seconds (hashing and unpacking
 * ~120 MB). Instead they are imported once per host into a template containerd root, and
 * each node's root starts as a hard-linked copy of it: content blobs and unpacked layers
 * are immutable, so sharing their inodes is safe; the bolt databases, which containerd
 * writes, are copied for real.
 */
export async function ensureImageTemplate(baseDir: string, archives: string[]): Promise<string> {
  const runtime = nodeContainerRuntime();
  const fingerprint = createHash("sha256");
  // The containerd that imports is part of the key: its metadata database is what every
  // node's containerd opens, so a template made by another containerd is made again.
  fingerprint.update(`${runtime.containerd}\n`);
  for (const a of archives) {
    const st = await stat(a);
    fingerprint.update(`${a}:${st.size}:${st.mtimeMs}\n`);
  }
  const key = fingerprint.digest("hex").slice(0, 16);
  const templates = join(baseDir, "image-templates");
  const root = join(templates, key);
  if (existsSync(join(root, "complete"))) return join(root, "root");
  return withFileLock(join(templates, "build.lock"), "the image template", async () => {
    if (existsSync(join(root, "complete"))) return join(root, "root");
    // A build cut short (a SIGKILL of the server during its `ctr import`) leaves containerd's
    // temporary mounts (root/tmpmounts/containerd-mount*) behind: rmdir on them is EBUSY.
    await unmountAll(root);
    await rm(root, { recursive: true, force: true });
    await mkdir(join(root, "root"), { recursive: true });
    const socket = join(root, "containerd.sock");
    const config = join(root, "containerd.toml");
    await writeFile(
      config,
      // Only the content store, snapshotter and metadata are needed for an import: the CRI
      // plugins (and NRI, which would listen on the host-wide /var/run/nri/nri.sock) stay off.
      `version = 4
root = "${root}/root"
state = "${root}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime", "io.containerd.nri.v1.nri"]
[plugins."io.containerd.server.v1.grpc"]
  address = "${socket}"
[plugins."io.containerd.server.v1.ttrpc"]
  address = "${socket}.ttrpc"
[plugins."io.containerd.server.v1.metrics"]
  address = ""
`,
    );
    const containerd = spawnTiedToParent(runtime.containerd, ["--config", config], { stdio: "ignore" });
    try {
      await waitFor("the template containerd", async () => existsSync(socket), 30_000, 20);
      for (const archive of archives) {
        await run(
          runtime.ctr,
          ["--address", socket, "--namespace", "k8s.io", "images", "import", "--snapshotter", "overlayfs", archive],
          { timeoutMs: 300_000 },
        );
      }
    } finally {
      await new Promise<void>((resolve) => {
        // A containerd that already died (a missing binary, a bad config) has fired its
        // "exit": waiting for another would hang the create, or end the process with the
        // cluster half-made once nothing else keeps node's event loop alive.
        if (containerd.exitCode !== null || containerd.signalCode !== null) return resolve();
        containerd.once("exit", () => resolve());
        containerd.kill("SIGTERM");
      });
      await unmountAll(root);
      await rm(join(root, "state"), { recursive: true, force: true });
    }
    await writeFile(join(root, "complete"), new Date().toISOString());
    for (const other of await readdir(templates)) {
      if (other !== key && !other.endsWith(".lock")) {
        await unmountAll(join(templates, other));
        await rm(join(templates, other), { recursive: true, force: true });
      }
    }
    return join(root, "root");
  });
}

/** Seeds a node's containerd root from the template: hard links, except databases. */
export async function seedContainerdRoot(templateRoot: string, nodeRoot: string): Promise<void> {
  await mkdir(join(nodeRoot, ".."), { recursive: true });
  const scratch = `${nodeRoot}.seeding`;
  await rm(scratch, { recursive: true, force: true });
  await run("cp", ["-al", templateRoot, scratch]);
  for (const db of await findFiles(scratch, (name) => name.endsWith(".db"))) {
    await rm(db);
    await copyFile(db.replace(scratch, templateRoot), db);
  }
  await rename(scratch, nodeRoot);
}

async function findFiles(dir: string, match: (name: string) => boolean, depth = 3): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isFile() && match(e.name)) out.push(p);
    else if (e.isDirectory() && depth > 0 && e.name !== "snapshots" && e.name !== "blobs")
      out.push(...(await findFiles(p, match, depth - 1)));
  }
  return out;
}
