import { constants, existsSync } from "node:fs";
import { access, readFile, statfs } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { run, succeeds } from "../util/exec.js";
import { cacheDir, dataDir } from "../util/paths.js";
import {
  IMAGES,
  type ImageKey,
  ADDONS,
  CONTAINER_RUNTIME,
  KUBERNETES_RELEASES,
  defaultRelease,
  imageContentVersion,
} from "../setup/catalogue.js";
import { LOCAL_TOOLS, artifacts, localToolBinary } from "../setup/installer.js";
import { canLowerOomScore } from "./capabilities.js";
import { hostCgroupVersion } from "./cgroup-version.js";
import type { CgroupVersion } from "../core/kubelet-policy.js";
import { plannedReleases } from "../runtime/local/cluster-releases.js";
import { hostLimitChecks } from "./limit-checks.js";

export type { HostCheck } from "./host-check.js";
import type { HostCheck } from "./host-check.js";

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const SETUP = join(REPO_ROOT, "scripts", "setup");
const MIN_FREE_GIB = 10;

export async function debianPackages(): Promise<string[]> {
  const text = await readFile(join(REPO_ROOT, "scripts", "debian-packages.txt"), "utf8");
  return text
    .split("\n")
    .map((l) => l.replace(/#.*/, "").trim().split(/\s+/)[0])
    .filter(Boolean);
}

async function exists(path: string): Promise<boolean> {
  return access(path, constants.F_OK).then(
    () => true,
    () => false,
  );
}

export async function runHostChecks(): Promise<HostCheck[]> {
  const checks: HostCheck[] = [];
  const add = (c: HostCheck) => checks.push(c);

  const root = process.getuid?.() === 0;
  add({
    name: "root",
    ok: root,
    blocking: true,
    detail: root ? "running as root" : "network namespaces, cgroups and mounts need root",
    fix: "sudo bin/tempkube ...",
  });

  const cgroupV1 = await exists("/sys/fs/cgroup/memory/memory.limit_in_bytes");
  const cgroupV2 = await exists("/sys/fs/cgroup/cgroup.controllers");
  add({
    name: "cgroups",
    ok: cgroupV1 || cgroupV2,
    blocking: true,
    detail: cgroupV1 || cgroupV2 ? cgroupMeaning(hostCgroupVersion()) : "no cgroup hierarchy mounted",
    fix: "mount -t cgroup2 none /sys/fs/cgroup",
  });

  const filesystems = await readFile("/proc/filesystems", "utf8").catch(() => "");
  const overlay = filesystems.includes("overlay") || (await succeeds("modprobe", ["overlay"]));
  add({
    name: "kernel: overlayfs",
    ok: overlay,
    blocking: true,
    detail: overlay ? "available" : "containerd's overlayfs snapshotter needs it",
    fix: "modprobe overlay",
  });

  const brNetfilter =
    (await exists("/proc/sys/net/bridge/bridge-nf-call-iptables")) || (await succeeds("modprobe", ["br_netfilter"]));
  add({
    name: "kernel: br_netfilter",
    ok: brNetfilter,
    blocking: true,
    detail: brNetfilter ? "available" : "Services between pods on one bridge need it",
    fix: "modprobe br_netfilter",
  });

  const conntrack =
    (await exists("/proc/sys/net/netfilter/nf_conntrack_max")) || (await succeeds("modprobe", ["nf_conntrack"]));
  add({
    name: "kernel: conntrack",
    ok: conntrack,
    blocking: true,
    detail: conntrack ? "available" : "kube-proxy needs nf_conntrack",
    fix: "modprobe nf_conntrack",
  });

  const netnsName = `tempkube-doctor-${process.pid}`;
  const netns = root && (await succeeds("ip", ["netns", "add", netnsName]));
  let veth = false;
  if (netns) {
    veth = await succeeds("ip", ["-n", netnsName, "link", "add", "tkdoc0", "type", "veth", "peer", "name", "tkdoc1"]);
    await succeeds("ip", ["netns", "del", netnsName]);
  }
  add({
    name: "kernel: network namespaces and veth",
    ok: netns && veth,
    blocking: true,
    detail: netns && veth ? "available" : "cannot create a network namespace with a veth pair",
    fix: "modprobe veth",
  });

  const packages = await debianPackages();
  const missing: string[] = [];
  for (const pkg of packages) {
    const { stdout } = await run("dpkg-query", ["-W", "-f=${Status}", pkg], { okCodes: [0, 1] }).catch(() => ({
      stdout: "",
    }));
    if (!stdout.includes("install ok installed")) missing.push(pkg);
  }
  add({
    name: "Debian packages",
    ok: missing.length === 0,
    blocking: true,
    detail: missing.length ? `missing: ${missing.join(", ")}` : `${packages.length} present`,
    fix: `apt-get install -y ${missing.join(" ")}`,
  });

  const go = await run("go", ["version"], {
    env: { ...process.env, PATH: `/usr/local/go/bin:${process.env.PATH}` },
  }).catch(() => undefined);
  add({
    name: "Go toolchain",
    ok: !!go,
    blocking: false,
    detail: go ? go.stdout.trim() : "needed to build upstream components from source",
    fix: SETUP,
  });

  const release = defaultRelease();
  const k8s = await artifacts.kubernetes(release).verify();
  add({
    name: `Kubernetes ${release.version}`,
    ok: k8s.ok,
    blocking: true,
    detail: k8s.ok ? "built" : k8s.reason,
    fix: SETUP,
  });
  for (const addon of ADDONS) {
    const v = await artifacts.addon(addon).verify();
    add({
      name: `${addon.name} ${addon.version}`,
      ok: v.ok,
      blocking: true,
      detail: v.ok ? "built" : v.reason,
      fix: SETUP,
    });
  }
  for (const runtime of CONTAINER_RUNTIME) {
    const v = await artifacts.containerRuntime(runtime).verify();
    add({
      name: `${runtime.name} ${runtime.version}`,
      ok: v.ok,
      blocking: true,
      detail: v.ok ? "built (every node runs it)" : v.reason,
      fix: SETUP,
    });
  }
  for (const tool of LOCAL_TOOLS) {
    const ok = existsSync(localToolBinary(tool));
    add({
      name: `tools/${tool}`,
      ok,
      blocking: true,
      detail: ok ? "built" : "not built (or its source changed)",
      fix: SETUP,
    });
  }
  const oomOk = canLowerOomScore();
  add({
    name: "CAP_SYS_RESOURCE",
    ok: oomOk,
    blocking: false,
    detail: oomOk
      ? "present"
      : "missing: pods keep the default OOM score (containerd restrict_oom_score_adj); clusters work",
  });
  for (const key of Object.keys(IMAGES) as ImageKey[]) {
    const v = await artifacts.image(key).verify(imageContentVersion(key));
    add({ name: `image ${IMAGES[key]}`, ok: v.ok, blocking: true, detail: v.ok ? "built" : v.reason, fix: SETUP });
  }

  for (const dir of new Set([cacheDir(), dataDir()])) {
    const existing = await nearestExisting(dir);
    const fs = await statfs(existing);
    const freeGiB = (fs.bavail * fs.bsize) / 2 ** 30;
    add({
      name: `free disk at ${dir}`,
      ok: freeGiB >= MIN_FREE_GIB,
      blocking: freeGiB < 2,
      detail: `${freeGiB.toFixed(1)} GiB free (want >= ${MIN_FREE_GIB})`,
      fix: `free space on the filesystem of ${existing}`,
    });
  }
  // The limits that cap how many clusters the host holds, and that many (issue 15).
  checks.push(...(await hostLimitChecks()));
  return checks;
}

async function nearestExisting(path: string): Promise<string> {
  let p = path;
  while (!(await exists(p))) p = dirname(p);
  return p;
}

/**
 * The host's cgroup version and what it means for each offered minor: which kubelet its
 * nodes run here (core/kubelet-policy.ts), one line per minor.
 */
export function cgroupMeaning(cgroup: CgroupVersion): string {
  const lines = KUBERNETES_RELEASES.map((release) => {
    const plan = plannedReleases(release.version, cgroup)!;
    if ("refused" in plan) return `${release.minor}: cannot run here: ${plan.refused}`;
    if (plan.kubelet !== plan.controlPlane) return `${release.minor}: ${plan.reason}`;
    return `${release.minor}: nodes run its own kubelet ${release.version}`;
  });
  const head =
    cgroup === "v2"
      ? "cgroup v2: every offered minor's nodes run their own kubelet"
      : "cgroup v1 (deprecated upstream, KEP-5573; kubelets from 1.35 run on it only with failCgroupV1: false, " +
        "which tempkube's kubelet configuration sets; a minor whose kubelet drops it gets an older kubelet within the version-skew policy)";
  return [head, ...lines].join("\n        ");
}
