import { readdir, readFile, readlink } from "node:fs/promises";
import { run } from "../util/exec.js";

/**
 * inotify instances and watches held by processes. The kernel keeps no readable count of
 * either (they are per-user "ucounts", fs.inotify.max_user_instances / max_user_watches
 * for uid 0, shared by every cluster on the host), so they are counted from each open
 * file: an inotify instance is an fd linked to `anon_inode:inotify`, and its fdinfo has one
 * `inotify wd:` line per watch (fs/notify/inotify/inotify_fdinfo.c).
 */
export interface InotifyUse {
  instances: number;
  watches: number;
}

const INOTIFY_LINK = "anon_inode:inotify";

/** What the given processes hold (pids that are gone count as nothing). */
export async function inotifyUseOf(pids: number[]): Promise<InotifyUse> {
  const use = { instances: 0, watches: 0 };
  // Bounded parallelism: a host with a hundred clusters has tens of thousands of fds.
  const queue = [...pids];
  const worker = async () => {
    for (let pid = queue.pop(); pid !== undefined; pid = queue.pop()) {
      const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
      for (const fd of fds) {
        if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "")) !== INOTIFY_LINK) continue;
        use.instances++;
        const info = await readFile(`/proc/${pid}/fdinfo/${fd}`, "utf8").catch(() => "");
        use.watches += info.split("\n").filter((l) => l.startsWith("inotify wd:")).length;
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  return use;
}

/**
 * What counts against root's limits (tempkube runs everything as root): the instances of
 * processes whose effective uid is 0, who own their /proc/<pid>/fd links (an instance is
 * charged to the euid of the process that made it, inotify_new_group()). Counted by
 * find(1) and grep(1): with a hundred clusters the host has ~50 000 open files, and a
 * readlink each from Node costs tens of microseconds (~5 µs synchronously, blocking the
 * server), from find about one.
 */
export async function hostInotifyUse(): Promise<InotifyUse> {
  const script =
    `find /proc/[0-9]*/fd -lname ${INOTIFY_LINK} -user root 2>/dev/null | sed 's|/fd/|/fdinfo/|' ` +
    "| xargs -r grep -c '^inotify wd:' /dev/null 2>/dev/null || true";
  const { stdout } = await run("/bin/sh", ["-c", script]);
  const use = { instances: 0, watches: 0 };
  for (const line of stdout.split("\n")) {
    const m = /^(\/proc\/\d+\/fdinfo\/\d+):(\d+)$/.exec(line);
    if (!m) continue;
    use.instances++;
    use.watches += Number(m[2]);
  }
  return use;
}
