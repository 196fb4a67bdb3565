import { readFile, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { run } from "../util/exec.js";
import { TempkubeError } from "../util/errors.js";
import { busyboxRootfs } from "../setup/busybox-rootfs.js";
import type { ImageSpec, LayerEntry } from "../setup/image-archive.js";
import { sharedLibraryClosure } from "../setup/shared-libraries.js";

/**
 * The test images the `[Conformance]` specs run, built here from their upstream sources
 * (agnhost and nonewprivs are Go programs in k8s.io/kubernetes test/images, pause is
 * build/pause/linux/pause.c, busybox is the project's source build) or, where upstream's
 * image is a third-party program (nginx, httpd, dig), from Debian's packages with their
 * shared libraries, on the busybox root filesystem. No registry is reachable, so each is
 * an archive pushed into the host registry under upstream's own reference: e2e.test
 * needs no KUBE_TEST_REPO_LIST, and every node's containerd finds it there
 * (host-registry.ts: the host registry answers for every registry name).
 *
 * Which images the conformance specs use, found by reading the files
 * test/conformance/testdata/conformance.yaml names (imageutils.<ID> references):
 * 1.34: Agnhost, BusyBox, Httpd, HttpdNew, JessieDnsutils, Kitten, Nautilus, Nginx,
 * NonRoot, Nonewprivs, Pause, APIServer and Etcd (the Aggregator spec);
 * 1.37: the same minus Httpd/HttpdNew/JessieDnsutils, plus AgnhostPrev, GlibcDnsTesting.
 * AgnhostPrivate, AuthenticatedAlpine and InvalidRegistryImage are meant not to be pullable.
 */

/** What test/utils/image/manifest.go of a release says: image id -> reference. */
export type ImageManifest = Map<string, string>;

/**
 * Reads a release's test/utils/image/manifest.go: the registry defaults (its one
 * `initRegistry = RegistryList{ PromoterE2eRegistry: "registry.k8s.io/e2e-test-images", ... }`
 * literal, 1.34-1.37) and initImageConfigs'
 * `configs[Agnhost] = Config{list.PromoterE2eRegistry, "agnhost", "2.56"}` lines.
 */
export function parseImageManifest(source: string): ImageManifest {
  const registries = new Map<string, string>();
  const defaults = /RegistryList\{([\s\S]*?)\n\s*\}/.exec(source)?.[1];
  if (!defaults) throw new Error("manifest.go: no RegistryList{...} literal (the registry defaults)");
  for (const m of defaults.matchAll(/^\s*(\w+Registry):\s*"([^"]+)",/gm)) registries.set(m[1], m[2]);
  const images: ImageManifest = new Map();
  for (const m of source.matchAll(/configs\[(\w+)\]\s*=\s*Config\{list\.(\w+),\s*"([^"]+)",\s*"([^"]+)"\}/g)) {
    const [, id, registryField, name, version] = m;
    const registry = registries.get(registryField);
    if (!registry)
      throw new Error(`manifest.go: configs[${id}] names list.${registryField}, which initReg does not set`);
    images.set(id, `${registry}/${name}:${version}`);
  }
  if (images.size === 0) throw new Error("manifest.go: no configs[<id>] = Config{list.<registry>, ...} lines");
  return images;
}

/** Inputs of the recipes: the release's source tree and the binaries built with e2e.test. */
export interface TestImageInputs {
  reference: string;
  /** k8s.io/kubernetes@<version> in the module cache. */
  kubernetesSource: string;
  agnhost: string;
  /** test/images/nonewprivs (nnp), built like agnhost. */
  nnp: string;
  /** k8s.io/sample-apiserver at the release's staging version. */
  sampleApiserver: string;
  /** etcd at the version of the release's Etcd image. */
  etcd: string;
  busyboxBinary: string;
  corednsBinary: string;
  logFile: string;
  scratchDir: string;
  /** agnhost's version as the release's manifest names it (its Makefile sets main.Version from VERSION). */
  agnhostVersion: string;
}

type Recipe = (inputs: TestImageInputs) => Promise<ImageSpec>;

/** Files that are a Debian package's programs, each at its own path, with the libraries they load in /lib. */
async function hostPrograms(
  files: { path: string; mode?: number; /** where it goes in the image (default: its own path) */ dest?: string }[],
  logFile: string,
  why: string,
): Promise<LayerEntry[]> {
  for (const f of files)
    await stat(f.path).catch(() => {
      throw new TempkubeError("setup", `${f.path} is missing (${why}); scripts/conformance installs it`);
    });
  const own = new Set(files.map((f) => f.path));
  const entries: LayerEntry[] = [];
  for (const f of files)
    entries.push({
      type: "file",
      path: (f.dest ?? f.path).slice(1),
      content: await readFile(f.path),
      mode: f.mode ?? (await stat(f.path)).mode & 0o7777,
    });
  for (const lib of await sharedLibraryClosure([...own], logFile)) {
    if (own.has(lib)) continue;
    entries.push({
      type: "file",
      path: `lib/${lib.split("/").pop()}`,
      content: await readFile(lib),
      mode: (await stat(lib)).mode & 0o777,
    });
  }
  return entries;
}

/**
 * One layer from several sources: a later entry replaces an earlier one at the same path
 * (as a later Dockerfile step would), and every parent directory exists.
 */
export function mergeEntries(...groups: LayerEntry[][]): LayerEntry[] {
  const byPath = new Map<string, LayerEntry>();
  for (const e of groups.flat()) byPath.set(e.path.replace(/^\/+|\/+$/g, ""), e);
  for (const path of [...byPath.keys()]) {
    for (let dir = dirname(path); dir !== "." && dir !== "/"; dir = dirname(dir))
      if (!byPath.has(dir)) byPath.set(dir, { type: "dir", path: dir });
  }
  return [...byPath.values()];
}

function textFile(path: string, text: string, mode = 0o644): LayerEntry {
  return { type: "file", path, content: Buffer.from(text), mode };
}

async function busybox(inputs: Pick<TestImageInputs, "busyboxBinary" | "logFile">): Promise<LayerEntry[]> {
  return busyboxRootfs(inputs.busyboxBinary, inputs.logFile);
}

/** Appends lines to a text file of the rootfs (users and groups a Dockerfile adds). */
function appendTo(entries: LayerEntry[], path: string, lines: string): LayerEntry {
  const existing = entries.find(
    (e): e is Extract<LayerEntry, { type: "file" }> => e.type === "file" && e.path === path,
  );
  return textFile(path, `${existing?.content.toString() ?? ""}${lines}`, existing?.mode ?? 0o644);
}

/**
 * agnhost's Dockerfile (test/images/agnhost): alpine with bind-tools (dig), curl, netcat,
 * iproute2, bash; CoreDNS at /coredns; /uploads; porter's localhost.crt/.key; the agnhost-2
 * link for the entrypoint tests; user-defined-in-image (1000) in group-defined-in-image
 * (50000) for the SupplementalGroups spec. Here: busybox (sh, ip, wget), Debian's dig,
 * curl and netcat-openbsd (as /usr/bin/nc, before busybox's in PATH), glibc's getent (the DNS specs' probes run `getent hosts`; alpine has musl's),
 * the add-on CoreDNS build.
 */
async function agnhostEntries(inputs: TestImageInputs): Promise<LayerEntry[]> {
  const base = await busybox(inputs);
  const porter = join(inputs.kubernetesSource, "test/images/agnhost/porter");
  return mergeEntries(
    base,
    await hostPrograms(
      [
        { path: "/usr/bin/dig" },
        { path: "/usr/bin/curl" },
        { path: "/usr/bin/getent" },
        // The specs run `nc -v -t -w 2 host port`: netcat-openbsd's options, which busybox's nc lacks (-t).
        { path: "/bin/nc.openbsd", dest: "/usr/bin/nc" },
      ],
      inputs.logFile,
      "Debian packages bind9-dnsutils, curl, libc-bin and netcat-openbsd",
    ),
    [
      appendTo(base, "etc/passwd", "user-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh\n"),
      appendTo(
        base,
        "etc/group",
        "user-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\n",
      ),
      { type: "dir", path: "home/user-defined-in-image", uid: 1000, gid: 1000 },
      { type: "dir", path: "uploads" },
      { type: "file", path: "localhost.crt", content: await readFile(join(porter, "localhost.crt")) },
      { type: "file", path: "localhost.key", content: await readFile(join(porter, "localhost.key")) },
      { type: "file", path: "coredns", content: await readFile(inputs.corednsBinary), mode: 0o755 },
      { type: "file", path: "agnhost", content: await readFile(inputs.agnhost), mode: 0o755 },
      { type: "symlink", path: "agnhost-2", target: "agnhost" },
      // Upstream's agnhost (and kitten, nautilus on it) is built FROM alpine:3.21, and the
      // ImageVolume spec (1.36+: "should succeed with pod and pull policy of Always") mounts
      // kitten as a volume and reads its /etc/os-release for "Alpine Linux". This one says
      // what it is: a stand-in for that base, which it is not.
      textFile(
        "etc/os-release",
        'NAME="tempkube test image"\nID=tempkube-test-image\nPRETTY_NAME="tempkube test image, standing in for upstream\'s Alpine Linux 3.21 base (busybox and Debian programs)"\n',
      ),
    ],
  );
}

const agnhost: Recipe = async (inputs) => ({
  reference: inputs.reference,
  entries: await agnhostEntries(inputs),
  entrypoint: ["/agnhost"],
  cmd: ["pause"],
});

/** kitten and nautilus: agnhost with a picture and data.json, serving them (test/images/kitten/Dockerfile). */
function webserverImage(name: "kitten" | "nautilus"): Recipe {
  return async (inputs) => {
    const html = join(inputs.kubernetesSource, "test/images", name, "html");
    return {
      reference: inputs.reference,
      entries: mergeEntries(await agnhostEntries(inputs), [
        { type: "file", path: `${name}.jpg`, content: await readFile(join(html, `${name}.jpg`)) },
        { type: "file", path: "data.json", content: await readFile(join(html, "data.json")) },
      ]),
      entrypoint: ["/agnhost"],
      cmd: ["test-webserver"],
    };
  };
}

/** jessie-dnsutils (1.34) and glibc-dns-testing (1.37): Debian with dnsutils and CoreDNS at /coredns. */
const dnsutils: Recipe = async (inputs) => ({
  reference: inputs.reference,
  entries: mergeEntries(
    await busybox(inputs),
    await hostPrograms(
      [{ path: "/usr/bin/dig" }, { path: "/usr/bin/nslookup" }, { path: "/usr/bin/getent" }],
      inputs.logFile,
      "Debian packages bind9-dnsutils and libc-bin",
    ),
    [{ type: "file", path: "coredns", content: await readFile(inputs.corednsBinary), mode: 0o755 }],
  ),
  cmd: ["sh"],
});

/** upstream's build/pause/linux/pause.c of the release, static, as the project's own pause image. */
const pause: Recipe = async (inputs) => {
  const out = join(inputs.scratchDir, "pause");
  const version = inputs.reference.split(":").pop()!;
  await run(
    "gcc",
    [
      "-Os",
      "-Wall",
      "-Werror",
      "-static",
      `-DVERSION=v${version}-tempkube`,
      "-o",
      out,
      join(inputs.kubernetesSource, "build/pause/linux/pause.c"),
    ],
    { logFile: inputs.logFile },
  );
  await run("strip", [out], { logFile: inputs.logFile });
  return {
    reference: inputs.reference,
    entries: [{ type: "file", path: "pause", content: await readFile(out), mode: 0o755 }],
    entrypoint: ["/pause"],
  };
};

/** nonewprivs: nnp (prints its effective uid) setuid root (test/images/nonewprivs/Dockerfile: chmod +s). */
const nonewprivs: Recipe = async (inputs) => ({
  reference: inputs.reference,
  entries: mergeEntries(await busybox(inputs), [
    { type: "file", path: "usr/local/bin/nnp", content: await readFile(inputs.nnp), mode: 0o6755 },
  ]),
  cmd: ["nnp"],
});

/** nonroot: a Debian base with USER 1234 (test/images/nonroot/Dockerfile). */
const nonroot: Recipe = async (inputs) => ({
  reference: inputs.reference,
  entries: await busybox(inputs),
  cmd: ["sh"],
  user: "1234",
});

const busyboxImage: Recipe = async (inputs) => ({
  reference: inputs.reference,
  entries: await busybox(inputs),
  cmd: ["sh"],
});

/**
 * nginx (upstream: nginx:1.27-alpine and 1.28-alpine): Debian's nginx-light serving
 * /usr/share/nginx/html on port 80 in the foreground, as the official image's default.conf
 * does (IPv4 only: pods here have no IPv6, and the official entrypoint drops the [::]
 * listener then too).
 */
const NGINX_CONF = `user www-data;
worker_processes 1;
error_log stderr notice;
pid /run/nginx.pid;
events { worker_connections 1024; }
http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  access_log /dev/stdout;
  sendfile on;
  keepalive_timeout 65;
  server {
    listen 80;
    server_name localhost;
    location / { root /usr/share/nginx/html; index index.html index.htm; }
  }
}
`;
/**
 * Also the image of the Ephemeron reference's own example (`image: nginx`, port 80), which
 * `ephemeron.e2e.test.ts` loads as docker.io/library/nginx:latest: no registry is reachable here.
 */
export const nginxImage = async (
  inputs: Pick<TestImageInputs, "reference" | "busyboxBinary" | "logFile">,
): Promise<ImageSpec> => ({
  reference: inputs.reference,
  entries: mergeEntries(
    await busybox(inputs),
    await hostPrograms([{ path: "/usr/sbin/nginx" }], inputs.logFile, "Debian package nginx-light"),
    [
      textFile("etc/nginx/nginx.conf", NGINX_CONF),
      { type: "file", path: "etc/nginx/mime.types", content: await readFile("/etc/nginx/mime.types") },
      textFile(
        "usr/share/nginx/html/index.html",
        "<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head><body><h1>Welcome to nginx!</h1></body></html>\n",
      ),
      { type: "dir", path: "var/log/nginx" },
      { type: "dir", path: "var/lib/nginx" },
      { type: "dir", path: "run" },
    ],
  ),
  cmd: ["nginx", "-g", "daemon off;"],
});

/**
 * httpd (upstream: httpd:2.4.38-alpine and 2.4.39-alpine, `httpd-foreground` serving
 * /usr/local/apache2/htdocs on port 80): Debian's apache2-bin with the event MPM and the
 * modules a static site needs, under the official image's paths.
 */
const APACHE_MODULES = ["mpm_event", "authz_core", "dir", "mime"];
const HTTPD_CONF = `ServerRoot /usr/local/apache2
Listen 80
${APACHE_MODULES.map((m) => `LoadModule ${m}_module /usr/lib/apache2/modules/mod_${m}.so`).join("\n")}
User www-data
Group www-data
ServerName localhost
DefaultRuntimeDir /usr/local/apache2/logs
PidFile /usr/local/apache2/logs/httpd.pid
ErrorLog /proc/self/fd/2
LogFormat "%h %l %u %t \\"%r\\" %>s %b" common
CustomLog /proc/self/fd/1 common
TypesConfig /etc/mime.types
DocumentRoot /usr/local/apache2/htdocs
DirectoryIndex index.html
<Directory />
  Require all denied
</Directory>
<Directory /usr/local/apache2/htdocs>
  Require all granted
</Directory>
`;
const httpd: Recipe = async (inputs) => ({
  reference: inputs.reference,
  entries: mergeEntries(
    await busybox(inputs),
    await hostPrograms(
      [{ path: "/usr/sbin/apache2" }, ...APACHE_MODULES.map((m) => ({ path: `/usr/lib/apache2/modules/mod_${m}.so` }))],
      inputs.logFile,
      "Debian package apache2-bin",
    ),
    [
      textFile("usr/local/apache2/conf/httpd.conf", HTTPD_CONF),
      { type: "file", path: "etc/mime.types", content: await readFile("/etc/mime.types") },
      textFile("usr/local/apache2/htdocs/index.html", "<html><body><h1>It works!</h1></body></html>\n"),
      { type: "dir", path: "usr/local/apache2/logs" },
      textFile(
        "usr/local/bin/httpd-foreground",
        '#!/bin/sh\nset -e\nrm -f /usr/local/apache2/logs/httpd.pid\nexec /usr/sbin/apache2 -DFOREGROUND -f /usr/local/apache2/conf/httpd.conf "$@"\n',
        0o755,
      ),
    ],
  ),
  cmd: ["httpd-foreground"],
  workingDir: "/usr/local/apache2",
});

/** sample-apiserver: the binary alone, entrypoint /sample-apiserver (test/images/sample-apiserver/Dockerfile). */
const sampleApiserver: Recipe = async (inputs) => ({
  reference: inputs.reference,
  entries: mergeEntries(await busybox(inputs), [
    { type: "file", path: "sample-apiserver", content: await readFile(inputs.sampleApiserver), mode: 0o755 },
  ]),
  entrypoint: ["/sample-apiserver"],
});

/** etcd (upstream: cluster/images/etcd, distroless): /usr/local/bin/etcd, which the Aggregator spec runs. */
const etcd: Recipe = async (inputs) => ({
  reference: inputs.reference,
  entries: mergeEntries(await busybox(inputs), [
    { type: "file", path: "usr/local/bin/etcd", content: await readFile(inputs.etcd), mode: 0o755 },
    { type: "dir", path: "var/etcd" },
  ]),
  cmd: ["/usr/local/bin/etcd"],
});

/** Recipes by the image id of manifest.go; ids without one are not built. */
export const TEST_IMAGE_RECIPES: Record<string, Recipe> = {
  Agnhost: agnhost,
  // The previous agnhost (1.37's upgrade specs roll from it to Agnhost): this release's agnhost under that tag.
  AgnhostPrev: agnhost,
  BusyBox: busyboxImage,
  Pause: pause,
  Kitten: webserverImage("kitten"),
  Nautilus: webserverImage("nautilus"),
  JessieDnsutils: dnsutils,
  GlibcDnsTesting: dnsutils,
  Nonewprivs: nonewprivs,
  NonRoot: nonroot,
  Nginx: nginxImage,
  NginxNew: nginxImage,
  Httpd: httpd,
  HttpdNew: httpd,
  APIServer: sampleApiserver,
  Etcd: etcd,
};

/** The images of a release's manifest that are built here, by id, in a stable order. */
export function imagesToBuild(manifest: ImageManifest): { id: string; reference: string }[] {
  return [...manifest]
    .filter(([id]) => id in TEST_IMAGE_RECIPES)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([id, reference]) => ({ id, reference }));
}
