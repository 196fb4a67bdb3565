import { mkdirSync, watch, type FSWatcher } from "node:fs";
import { access, mkdir, readdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { GatewayLink } from "../controller/gateway-link.js";
import { isValidClusterId } from "../core/cluster-spec.js";
import { logger } from "../util/log.js";
import type { GatewayActivity, GatewayPaths } from "./gateway-files.js";

/**
 * How often the wake directory is read again besides watching it. fs.watch may miss events
 * (inotify's queue overflows; it does not see some network file systems) and may fail to
 * start at all, so a slow rescan makes a missed request a delay, never a connection held forever.
 */
export const WAKE_RESCAN_MS = 15_000;

/**
 * The server's side of the sleep/wake files of gateway-files.ts: it writes and removes
 * `sleeping/<id>` markers, and watches `wake/<id>` requests (written by the gateway when a
 * connection for a sleeping cluster arrives), removing each once handled. The activity comes
 * from the gateway's control socket, given by whoever wires this up.
 */
export class GatewaySleepFiles implements GatewayLink {
  constructor(
    private readonly paths: GatewayPaths,
    private readonly fetchActivity: () => Promise<GatewayActivity | undefined>,
    private readonly rescanMs = WAKE_RESCAN_MS,
  ) {}

  activity(): Promise<GatewayActivity | undefined> {
    return this.fetchActivity();
  }

  async sleepingMarkers(): Promise<string[]> {
    return clusterIdsIn(this.paths.sleepingDir);
  }

  /** Written whole and renamed into place, as every file of the gateway's directory is. */
  async markSleeping(clusterId: string): Promise<void> {
    await mkdir(this.paths.sleepingDir, { recursive: true });
    const temporary = join(this.paths.sleepingDir, `.${clusterId}.${process.pid}.tmp`);
    await writeFile(temporary, `${new Date().toISOString()}\n`);
    await rename(temporary, this.paths.sleeping(clusterId));
  }

  async clearSleeping(clusterId: string): Promise<void> {
    await rm(this.paths.sleeping(clusterId), { force: true });
  }

  async wakeHandled(clusterId: string): Promise<void> {
    await rm(this.paths.wake(clusterId), { force: true });
  }

  /**
   * Reports the requests already there (made while no server ran), then each new one as the
   * watch sees it, and everything present again every `rescanMs`. Names that are not cluster
   * ids (a writer's temporary file) are not requests.
   */
  wakeRequests(onWake: (clusterId: string) => void): () => void {
    const dir = this.paths.wakeDir;
    mkdirSync(dir, { recursive: true });
    let open = true;
    const report = (id: string) => {
      if (open && isValidClusterId(id)) onWake(id);
    };
    const scan = async () => {
      for (const id of await clusterIdsIn(dir).catch(() => [])) report(id);
    };
    let watcher: FSWatcher | undefined;
    try {
      watcher = watch(dir, (_event, filename) => {
        if (!filename) return void scan();
        const id = filename.toString();
        if (!isValidClusterId(id)) return;
        // "rename" is both a file arriving and one going (our own removal): only one present is a request.
        void access(join(dir, id)).then(
          () => report(id),
          () => undefined,
        );
      });
      watcher.on("error", (err) => {
        logger.warn({ dir, err: String(err) }, "watching wake requests failed; rescanning only");
        watcher?.close();
      });
    } catch (err) {
      logger.warn({ dir, err: String(err) }, "cannot watch wake requests; rescanning only");
    }
    // After the watch is set, so that nothing written in between goes unseen.
    void scan();
    const rescan = setInterval(() => void scan(), this.rescanMs);
    rescan.unref();
    return () => {
      open = false;
      watcher?.close();
      clearInterval(rescan);
    };
  }
}

async function clusterIdsIn(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter(isValidClusterId);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}
