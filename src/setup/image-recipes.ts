import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { run } from "../util/exec.js";
import { IMAGES, type ImageKey, type KubernetesRelease } from "./catalogue.js";
import { busyboxRootfs } from "./busybox-rootfs.js";
import { goEnv } from "./go-source-build.js";
import type { ImageSpec, LayerEntry } from "./image-archive.js";

/** Inputs an image recipe may need: built add-on binaries and the Kubernetes source tree. */
export interface RecipeInputs {
  addonBinary(name: string): string;
  /** The busybox binary busybox-build.ts made. */
  busyboxBinary: string;
  kubernetes: KubernetesRelease;
  logFile: string;
  scratchDir: string;
}

export const BASE_DIRS: LayerEntry[] = [
  { type: "dir", path: "etc" },
  { type: "dir", path: "tmp", mode: 0o1777 },
  { type: "dir", path: "var" },
  { type: "dir", path: "root", mode: 0o700 },
];
export const ETC_FILES: LayerEntry[] = [
  {
    type: "file",
    path: "etc/passwd",
    content: Buffer.from("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
  },
  { type: "file", path: "etc/group", content: Buffer.from("root:x:0:\nnogroup:x:65534:\n") },
  { type: "file", path: "etc/nsswitch.conf", content: Buffer.from("hosts: files dns\n") },
];

export const IMAGE_RECIPES: Record<ImageKey, (inputs: RecipeInputs) => Promise<ImageSpec>> = {
  /** Upstream's pause.c, compiled static: the sandbox of every pod. */
  async pause(inputs) {
    const { stdout } = await run("go", ["mod", "download", "-json", `k8s.io/kubernetes@${inputs.kubernetes.version}`], {
      env: goEnv(false),
      logFile: inputs.logFile,
      cwd: inputs.scratchDir,
    });
    const dir = (JSON.parse(stdout) as { Dir: string }).Dir;
    const out = join(inputs.scratchDir, "pause");
    const version = IMAGES.pause.split(":")[1];
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
        join(dir, "build/pause/linux/pause.c"),
      ],
      { logFile: inputs.logFile },
    );
    await run("strip", [out], { logFile: inputs.logFile });
    return {
      reference: IMAGES.pause,
      entries: [{ type: "file", path: "pause", content: await readFile(out), mode: 0o755 }],
      entrypoint: ["/pause"],
    };
  },

  async coredns(inputs) {
    return {
      reference: IMAGES.coredns,
      entries: [
        ...BASE_DIRS,
        ...ETC_FILES,
        { type: "file", path: "coredns", content: await readFile(inputs.addonBinary("coredns")), mode: 0o755 },
      ],
      entrypoint: ["/coredns"],
    };
  },

  async localPath(inputs) {
    return {
      reference: IMAGES.localPath,
      entries: [
        ...BASE_DIRS,
        ...ETC_FILES,
        { type: "dir", path: "usr" },
        { type: "dir", path: "usr/bin" },
        {
          type: "file",
          path: "usr/bin/local-path-provisioner",
          content: await readFile(inputs.addonBinary("local-path-provisioner")),
          mode: 0o755,
        },
      ],
      entrypoint: ["local-path-provisioner"],
    };
  },

  /** BusyBox built from source with the official image's configuration and layout (busybox-rootfs.ts). */
  async busybox(inputs) {
    return {
      reference: IMAGES.busybox,
      entries: await busyboxRootfs(inputs.busyboxBinary, inputs.logFile),
      cmd: ["sh"],
    };
  },
};
