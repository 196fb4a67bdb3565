import { readFile, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { run } from "../util/exec.js";
import { TempkubeError } from "../util/errors.js";
import type { LayerEntry } from "./image-archive.js";
import { sharedLibraryClosure } from "./shared-libraries.js";

/*
 * The root filesystem of the official busybox image's glibc variant, as
 * docker-library/busybox's Dockerfile.builder lays it out: every applet in /bin, glibc and
 * its NSS modules in /lib (lib64 -> lib), Debian's getconf and nsswitch.conf, buildroot's
 * skeleton users and groups, the directories of buildroot's device_table.txt, UTC time.
 */

/** buildroot system/skeleton/etc/passwd (the official builder copies it). */
const PASSWD = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
`;
/** buildroot system/skeleton/etc/group. */
const GROUP = `root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:
operator:x:37:
utmp:x:43:
plugdev:x:46:
staff:x:50:
lock:x:54:
netdev:x:82:
users:x:100:
nobody:x:65534:
`;
/** buildroot's shadow with root locked (`root:*`, CVE-2019-5021), as the official image has it. */
const SHADOW = ["root", "daemon", "bin", "sys", "sync", "mail", "www-data", "operator", "nobody"]
  .map((u) => `${u}:*:::::::\n`)
  .join("");
/** Debian's default /etc/nsswitch.conf (libc-bin), which the official builder copies. */
const NSSWITCH = `# /etc/nsswitch.conf
#
# Example configuration of GNU Name Service Switch functionality.
# If you have the \`glibc-doc-reference' and \`info' packages installed, try:
# \`info libc "Name Service Switch"' for information about this file.

passwd:         files
group:          files
shadow:         files
gshadow:        files

hosts:          files dns
networks:       files

protocols:      db files
services:       db files
ethers:         db files
rpc:            db files

netgroup:       nis
`;

/** Directories of the official rootfs (buildroot's device_table.txt plus the users' homes), with owners. */
const DIRS: LayerEntry[] = [
  "bin",
  "dev",
  "etc",
  "etc/network",
  "etc/network/if-down.d",
  "etc/network/if-post-down.d",
  "etc/network/if-pre-up.d",
  "etc/network/if-up.d",
  "lib",
  "usr",
  "usr/bin",
  "var",
  "var/spool",
  "var/www",
]
  .map((path): LayerEntry => ({ type: "dir", path }))
  .concat([
    { type: "dir", path: "root", mode: 0o700 },
    { type: "dir", path: "tmp", mode: 0o1777 },
    { type: "dir", path: "home", uid: 65534, gid: 65534 },
    { type: "dir", path: "usr/sbin", uid: 1, gid: 1 },
    { type: "dir", path: "var/spool/mail", uid: 8, gid: 8 },
  ]);

/** libc6's own NSS modules (the host may have others, e.g. libnss_systemd, that the official image lacks). */
const NSS_MODULES = [
  "libnss_compat.so.2",
  "libnss_dns.so.2",
  "libnss_files.so.2",
  "libnss_hesiod.so.2",
  "libpthread.so.0",
];
const GETCONF = "/usr/bin/getconf";
const UTC_ZONE = "/usr/share/zoneinfo/UTC";

async function hostFile(path: string, why: string): Promise<Buffer> {
  return readFile(path).catch(() => {
    throw new TempkubeError("setup", `${path} is missing (${why})`);
  });
}

/** The image's entries for a busybox binary built by busybox-build.ts. */
export async function busyboxRootfs(busybox: string, logFile: string): Promise<LayerEntry[]> {
  const { stdout: multiarch } = await run("gcc", ["-print-multiarch"], { logFile });
  const libDir = join("/lib", multiarch.trim());
  const libraries = await sharedLibraryClosure([busybox, GETCONF, ...NSS_MODULES.map((m) => join(libDir, m))], logFile);
  const libEntries: LayerEntry[] = [];
  for (const lib of libraries.filter((f) => f !== busybox && f !== GETCONF)) {
    const mode = (await stat(lib)).mode & 0o777;
    libEntries.push({
      type: "file",
      path: `lib/${basename(lib)}`,
      content: await hostFile(lib, "the image's glibc; Debian package libc6"),
      mode,
    });
  }
  // `busybox --install /bin` in the official builder: every applet, in /bin, whatever
  // busybox --list-full would say (Debian's image put sysctl and others in /sbin only).
  const { stdout } = await run(busybox, ["--list"], { logFile });
  const applets = stdout
    .split("\n")
    .map((l) => l.trim())
    .filter((a) => a && a !== "busybox");
  return [
    ...DIRS,
    { type: "symlink", path: "lib64", target: "lib" },
    { type: "file", path: "bin/busybox", content: await readFile(busybox), mode: 0o755 },
    ...applets.map((a): LayerEntry => ({ type: "symlink", path: `bin/${a}`, target: "/bin/busybox" })),
    { type: "file", path: "bin/getconf", content: await hostFile(GETCONF, "Debian package libc-bin"), mode: 0o755 },
    { type: "symlink", path: "usr/bin/env", target: "../../bin/env" },
    ...libEntries,
    { type: "file", path: "etc/passwd", content: Buffer.from(PASSWD) },
    { type: "file", path: "etc/group", content: Buffer.from(GROUP) },
    { type: "file", path: "etc/shadow", content: Buffer.from(SHADOW), mode: 0o600 },
    { type: "file", path: "etc/nsswitch.conf", content: Buffer.from(NSSWITCH) },
    { type: "file", path: "etc/localtime", content: await hostFile(UTC_ZONE, "Debian package tzdata") },
  ];
}
