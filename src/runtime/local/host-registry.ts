import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { run, succeeds } from "../../util/exec.js";
import { TempkubeError } from "../../util/errors.js";
import { withFileLock } from "../../util/lock.js";
import { freePort } from "../../util/net.js";
import { ensureCgroup } from "./cgroups.js";
import { archiveImages, type ArchiveImage } from "./image-references.js";
import { Supervisor } from "./supervisor.js";
import { waitFor } from "./wait.js";

/**
 * Images loaded for every cluster live in one registry on the host (docker-registry, the
 * CNCF distribution server from Debian), and every node's containerd pulls from it
 * whatever image it lacks (containerdRegistryHosts). So an image is stored once, loading it
 * touches no cluster, and clusters made or started later see it too.
 *
 * Clusters reach the registry at 172.30.0.1, an address on the host's loopback device that
 * lies outside every cluster's range, so it is routed to the host from each node namespace
 * and is not exposed on the host's other interfaces. That registry is read-only: pods can
 * pull but never push. Pushes go through a second, short-lived registry on the same storage
 * that listens on the host's 127.0.0.1 only, for the length of one load.
 */
export const REGISTRY_ADDRESS = "172.30.0.1";
export const REGISTRY_PORT = 5000;
export const REGISTRY_URL = `http://${REGISTRY_ADDRESS}:${REGISTRY_PORT}`;
const REGISTRY_CGROUP = "/tempkube-host/registry";

function registryConfig(storage: string, addr: string, readonly: boolean): string {
  return `version: 0.1
log: { level: warn, accesslog: { disabled: true } }
storage:
  filesystem: { rootdirectory: ${JSON.stringify(storage)} }
  delete: { enabled: false }
  maintenance:
    uploadpurging: { enabled: false }
    readonly: { enabled: ${readonly} }
http:
  addr: ${addr}
`;
}

/** hosts.toml for a node's containerd: every registry name resolves to the host registry. */
export function containerdRegistryHosts(): string {
  return `# Every image a node lacks is pulled from the host registry (host-registry.ts); there is no other.
server = "${REGISTRY_URL}"

[host."${REGISTRY_URL}"]
  capabilities = ["pull", "resolve"]
`;
}

export class HostRegistry {
  constructor(private readonly base: string) {}

  private get dir(): string {
    return join(this.base, "registry");
  }

  private get storage(): string {
    return join(this.dir, "storage");
  }

  private supervisor(): Supervisor {
    return new Supervisor(join(this.dir, "run"), join(this.dir, "logs"));
  }

  /** Starts the read-only registry that clusters pull from, unless it runs already. */
  async ensureRunning(): Promise<void> {
    const { stdout } = await run("ip", ["-o", "addr", "show", "dev", "lo"]);
    if (!stdout.includes(` ${REGISTRY_ADDRESS}/32 `)) await succeeds("ip", ["addr", "add", `${REGISTRY_ADDRESS}/32`, "dev", "lo"]);
    const sup = this.supervisor();
    if (await sup.isRunning("registry")) return;
    await mkdir(join(this.dir, "run"), { recursive: true });
    await mkdir(join(this.dir, "logs"), { recursive: true });
    await mkdir(this.storage, { recursive: true });
    const config = join(this.dir, "registry.yaml");
    await writeFile(config, registryConfig(this.storage, `${REGISTRY_ADDRESS}:${REGISTRY_PORT}`, true));
    await ensureCgroup(REGISTRY_CGROUP);
    await sup.start({ name: "registry", command: "/usr/bin/docker-registry", args: ["serve", config], cgroup: REGISTRY_CGROUP });
    await this.waitServing(REGISTRY_URL, sup);
  }

  private async waitServing(url: string, sup?: Supervisor): Promise<void> {
    try {
      await waitFor(`the image registry at ${url}`, () => fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false), 15_000, 20);
    } catch (err) {
      const tail = sup ? await sup.lastLines("registry", 8) : [];
      throw new TempkubeError("host", `${(err as Error).message}${tail.length ? `\n${tail.join("\n")}` : ""}`);
    }
  }

  /** Pushes every image the archive names; returns their references. */
  async push(archive: string): Promise<string[]> {
    const images = await archiveImages(archive);
    await mkdir(this.storage, { recursive: true });
    return withFileLock(join(this.dir, "push.lock"), "the image registry", async () => {
      const port = await freePort();
      const config = join(this.dir, "writer.yaml");
      await writeFile(config, registryConfig(this.storage, `127.0.0.1:${port}`, false));
      const log = openSync(join(this.dir, "writer.log"), "a");
      const writer = spawn("/usr/bin/docker-registry", ["serve", config], { stdio: ["ignore", log, log] });
      closeSync(log);
      const exited = new Promise<void>((resolve) => writer.once("exit", () => resolve()));
      try {
        await this.waitServing(`http://127.0.0.1:${port}`);
        for (const image of images) await this.copy(image, `127.0.0.1:${port}`);
      } finally {
        writer.kill("SIGTERM");
        await exited;
      }
      return images.map((i) => i.reference);
    });
  }

  private async copy(image: ArchiveImage, registry: string): Promise<void> {
    try {
      await run("skopeo", ["--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false", image.source,
        `docker://${registry}/${image.repository}:${image.tag}`], { timeoutMs: 600_000 });
    } catch (err) {
      throw new TempkubeError("invalid-input", `could not load ${image.reference}: ${(err as Error).message}`, { cause: err });
    }
  }
}
