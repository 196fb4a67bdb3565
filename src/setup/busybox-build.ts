import { existsSync } from "node:fs";
import { copyFile, mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { run } from "../util/exec.js";
import { TempkubeError } from "../util/errors.js";
import { sha256File } from "./artifact-dir.js";
import { BUSYBOX } from "./catalogue.js";

/**
 * The official image's configuration on top of `make defconfig`, as docker-library/busybox's
 * glibc Dockerfile.builder sets it for 1.35.0 (its SHA-HWACCEL unsets name options 1.35 lacks).
 */
export const BUSYBOX_CONFIG_SET = [
  "CONFIG_AR=y",
  "CONFIG_FEATURE_AR_CREATE=y",
  "CONFIG_FEATURE_AR_LONG_FILENAMES=y",
  // docker-library/busybox#13: UTF-8 input.
  "CONFIG_LAST_SUPPORTED_WCHAR=0",
] as const;
export const BUSYBOX_CONFIG_UNSET = ["CONFIG_FEATURE_SYNC_FANCY"] as const;

/** Applies the set/unset lists to a `.config`, as the official builder's sed loop does. */
export function applyBusyboxConfig(config: string): string {
  let lines = config.split("\n");
  for (const name of BUSYBOX_CONFIG_UNSET) {
    lines = lines.map((l) => (l.startsWith(`${name}=`) ? `# ${name} is not set` : l));
  }
  for (const setting of BUSYBOX_CONFIG_SET) {
    const name = setting.slice(0, setting.indexOf("="));
    let found = false;
    lines = lines.map((l) => {
      if (l.startsWith(`${name}=`) || l === `# ${name} is not set`) {
        found = true;
        return setting;
      }
      return l;
    });
    if (!found) lines.splice(lines.length - (lines[lines.length - 1] === "" ? 1 : 0), 0, setting);
  }
  return lines.join("\n");
}

/** What in a `.config` (after `make oldconfig`) differs from the official settings; empty when none. */
export function busyboxConfigProblems(config: string): string[] {
  const lines = new Set(config.split("\n"));
  const problems: string[] = [];
  for (const name of BUSYBOX_CONFIG_UNSET) {
    if ([...lines].some((l) => l.startsWith(`${name}=`))) problems.push(`${name} is set, wanted unset`);
  }
  for (const setting of BUSYBOX_CONFIG_SET) if (!lines.has(setting)) problems.push(`${setting} is missing`);
  return problems;
}

/**
 * `deb-src` lines for the Debian archives apt already uses, from `apt-get indextargets`
 * lines of "BASE_URI<TAB>RELEASE<TAB>COMPONENT<TAB>ORIGIN" (e.g.
 * "http://deb.debian.org/debian/dists/bookworm/\tbookworm\tmain\tDebian"): the same
 * mirror and suites, so whatever mirror or proxy the host is set up with serves the source.
 */
export function debSrcLines(indextargets: string, signedBy?: string): string[] {
  const lines = new Set<string>();
  for (const line of indextargets.split("\n")) {
    const [baseUri, release, component, origin] = line.split("\t");
    if (!baseUri || component !== "main" || origin !== "Debian") continue;
    const uri = baseUri.replace(/dists\/.*$/, "");
    lines.add(`deb-src ${signedBy ? `[signed-by=${signedBy}] ` : ""}${uri} ${release} main`);
  }
  return [...lines];
}

const DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg";

/**
 * Fetches the upstream source through apt (`apt-get source` with a throwaway source list and
 * state under `workDir`; the host's apt state is untouched) and checks it against the pinned
 * checksum. apt checks the tarball against the signed .dsc; the pin proves it is upstream's.
 */
async function fetchSource(workDir: string, logFile: string): Promise<string> {
  const { stdout } = await run(
    "apt-get",
    ["indextargets", "--format", "$(BASE_URI)\t$(RELEASE)\t$(COMPONENT)\t$(ORIGIN)", "Identifier: Packages"],
    { logFile },
  );
  const sources = debSrcLines(stdout, existsSync(DEBIAN_KEYRING) ? DEBIAN_KEYRING : undefined);
  if (sources.length === 0) {
    throw new TempkubeError(
      "setup",
      `busybox source: apt has no Debian archive with a main component configured (apt-get indextargets); log: ${logFile}`,
    );
  }
  const apt = join(workDir, "apt");
  for (const d of ["lists/partial", "cache/archives/partial", "sources.list.d"])
    await mkdir(join(apt, d), { recursive: true });
  await writeFile(join(apt, "sources.list"), `${sources.join("\n")}\n`);
  const options = [
    "-o",
    `Dir::Etc::sourcelist=${join(apt, "sources.list")}`,
    "-o",
    `Dir::Etc::sourceparts=${join(apt, "sources.list.d")}`,
    "-o",
    `Dir::State::Lists=${join(apt, "lists")}`,
    "-o",
    `Dir::Cache=${join(apt, "cache")}`,
    // Downloads land in a directory root owns; the _apt sandbox user could not write there.
    "-o",
    "APT::Sandbox::User=root",
  ];
  await run("apt-get", [...options, "update"], { logFile });
  const downloads = join(workDir, "download");
  await mkdir(downloads, { recursive: true });
  await run("apt-get", [...options, "source", "--download-only", BUSYBOX.debianSourcePackage], {
    cwd: downloads,
    logFile,
  });
  const tarball = join(downloads, `${BUSYBOX.debianSourcePackage}_${BUSYBOX.version}.orig.tar.bz2`);
  if (!existsSync(tarball)) {
    throw new TempkubeError(
      "setup",
      `busybox source: Debian's ${BUSYBOX.debianSourcePackage} source package is not ${BUSYBOX.version} ` +
        `(got ${(await readdir(downloads)).join(", ")}); log: ${logFile}`,
    );
  }
  const sha256 = await sha256File(tarball);
  if (sha256 !== BUSYBOX.sourceSha256) {
    throw new TempkubeError(
      "setup",
      `busybox source: ${tarball} has SHA-256 ${sha256}, expected ${BUSYBOX.sourceSha256} (busybox.net's busybox-${BUSYBOX.version}.tar.bz2); log: ${logFile}`,
    );
  }
  return tarball;
}

/**
 * Builds busybox into `outDir/busybox` (and its `.config` as `outDir/busybox.config`) the way
 * docker-library/busybox's glibc builder does: upstream source, defconfig plus the official
 * settings, dynamically linked against glibc (glibc's resolver loads libnss, so the image
 * carries the libraries; see image-recipes.ts).
 */
export async function buildBusybox(outDir: string, logFile: string): Promise<void> {
  const workDir = join(outDir, "work");
  try {
    const tarball = await fetchSource(workDir, logFile);
    await run("tar", ["-xjf", tarball, "-C", workDir], { logFile });
    const src = join(workDir, `busybox-${BUSYBOX.version}`);
    // The build date is embedded in the binary ("BusyBox v1.35.0 (date)"); like the official
    // builder, take it from the tarball so a rebuild gives the same binary.
    const sourceDateEpoch = String(Math.floor((await stat(src)).mtimeMs / 1000));
    const env = { ...process.env, SOURCE_DATE_EPOCH: sourceDateEpoch, LC_ALL: "C" };
    await run("make", ["defconfig"], { cwd: src, env, logFile });
    const configFile = join(src, ".config");
    await writeFile(configFile, applyBusyboxConfig(await readFile(configFile, "utf8")));
    await run("make", ["oldconfig"], { cwd: src, env, logFile });
    const problems = busyboxConfigProblems(await readFile(configFile, "utf8"));
    if (problems.length > 0)
      throw new TempkubeError("setup", `busybox .config after make oldconfig: ${problems.join("; ")}; log: ${logFile}`);
    await run("make", ["-j", String(availableParallelism()), "busybox"], { cwd: src, env, logFile });
    await run(join(src, "busybox"), ["--help"], { logFile });
    await copyFile(join(src, "busybox"), join(outDir, "busybox"));
    await copyFile(configFile, join(outDir, "busybox.config"));
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}
