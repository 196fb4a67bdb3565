import { closeSync, openSync } from "node:fs";
import { existsSync } from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { run, spawnTiedToParent, succeeds } from "../../util/exec.js";
import { TempkubeError } from "../../util/errors.js";
import { withFileLock } from "../../util/lock.js";
import { logger } from "../../util/log.js";
import { freePort } from "../../util/net.js";
import { HOST_STATE_DIR } from "../../util/paths.js";
import { ensureCgroup } from "./cgroups.js";
import { archiveImages, type ArchiveImage } from "./image-references.js";
import { Supervisor } from "./supervisor.js";
import { waitFor } from "./wait.js";
import type { ClusterEgress } from "./host-firewall.js";

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
 *
 * One registry per host, shared by every tempkube instance whatever its data dir: its
 * address:port is the host's, and so is what it means to load an image "for every cluster".
 * Its storage and process state live with the host-wide state (HOST_STATE_DIR), not in any
 * data dir, so that a second instance neither fails to bind nor pushes into storage that
 * no registry serves.
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

/**
 * hosts.toml (`_default`, so for every registry name) for a node's containerd: an image a
 * node lacks comes from the host registry first. With egress `internet` the registry the
 * image names comes next: containerd 1.6 appends the file's `server` as the last host, and
 * when `server` is omitted it takes the image's own registry (https; registry-1.docker.io
 * for docker.io) (remotes/docker/config/hosts.go, ConfigureHosts). The resolver moves to the
 * next host when one answers 404, so images in the host registry still win. With `none`,
 * the host registry is the only one, and a missing image fails at once.
 */
export function containerdRegistryHosts(egress: ClusterEgress = "none"): string {
  const mirror = `[host."${REGISTRY_URL}"]
  capabilities = ["pull", "resolve"]
`;
  if (egress === "internet") {
    return `# Images come from the host registry (host-registry.ts) first, then from the registry they name.
${mirror}`;
  }
  return `# Every image a node lacks is pulled from the host registry (host-registry.ts); there is no other.
server = "${REGISTRY_URL}"

${mirror}`;
}

export class HostRegistry {
  /** legacyBase: a data dir whose own registry (from before it was host-wide) moves into the shared one. */
  constructor(
    private readonly legacyBase?: string,
    private readonly base = HOST_STATE_DIR,
  ) {}

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
    if (!stdout.includes(` ${REGISTRY_ADDRESS}/32 `))
      await succeeds("ip", ["addr", "add", `${REGISTRY_ADDRESS}/32`, "dev", "lo"]);
    const sup = this.supervisor();
    if (await sup.isRunning("registry")) return;
    await mkdir(this.dir, { recursive: true });
    // Two instances booting clusters at once must not both start one (the second cannot bind).
    await withFileLock(join(this.dir, "start.lock"), "the image registry's start", async () => {
      if (await sup.isRunning("registry")) return;
      await this.adoptLegacy();
      await this.start(sup);
    });
  }

  /**
   * A data dir's own registry, from before the registry was shared: stopped (it holds the
   * address), and its images moved into the shared storage if that has none yet.
   */
  private async adoptLegacy(): Promise<void> {
    if (!this.legacyBase) return;
    const legacy = join(this.legacyBase, "registry");
    if (!existsSync(legacy) || legacy === this.dir) return;
    await new Supervisor(join(legacy, "run"), join(legacy, "logs")).stopAll(2000);
    if (existsSync(join(legacy, "storage")) && !existsSync(this.storage)) {
      try {
        await rename(join(legacy, "storage"), this.storage);
      } catch (err) {
        logger.warn(
          { err, legacy },
          "could not move the images of a data dir's own registry into the shared one; load them again",
        );
        return;
      }
    }
    await rm(legacy, { recursive: true, force: true });
  }

  private async start(sup: Supervisor): Promise<void> {
    await mkdir(join(this.dir, "run"), { recursive: true });
    await mkdir(join(this.dir, "logs"), { recursive: true });
    await mkdir(this.storage, { recursive: true });
    const config = join(this.dir, "registry.yaml");
    await writeFile(config, registryConfig(this.storage, `${REGISTRY_ADDRESS}:${REGISTRY_PORT}`, true));
    await ensureCgroup(REGISTRY_CGROUP);
    await sup.start({
      name: "registry",
      command: "/usr/bin/docker-registry",
      args: ["serve", config],
      cgroup: REGISTRY_CGROUP,
    });
    await this.waitServing(REGISTRY_URL, sup);
  }

  private async waitServing(url: string, sup?: Supervisor): Promise<void> {
    try {
      await waitFor(
        `the image registry at ${url}`,
        () =>
          fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000) }).then(
            (r) => r.ok,
            () => false,
          ),
        15_000,
        20,
      );
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
      const writer = spawnTiedToParent("/usr/bin/docker-registry", ["serve", config], { stdio: ["ignore", log, log] });
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
      await run(
        "skopeo",
        [
          "--insecure-policy",
          "copy",
          "--quiet",
          "--dest-tls-verify=false",
          image.source,
          `docker://${registry}/${image.repository}:${image.tag}`,
        ],
        { timeoutMs: 600_000 },
      );
    } catch (err) {
      throw new TempkubeError("invalid-input", `could not load ${image.reference}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
}
