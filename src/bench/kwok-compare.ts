import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { newClusterId } from "../core/cluster-spec.js";
import { kubernetesBinary } from "../setup/artifact-paths.js";
import { defaultRelease } from "../setup/catalogue.js";
import { TempkubeError } from "../util/errors.js";
import { run } from "../util/exec.js";
import { median } from "./stats.js";

/**
 * `bench --compare kwok` (issue 15 item 4): kwokctl's binary runtime (a control plane on etcd,
 * nodes simulated by kwok: no kubelet, no containers, no DNS) against tempkube's local runtime
 * (a real node, CoreDNS answering), both on this host's Kubernetes binaries of the default
 * release, each timed as a user's command from process start to exit, runs interleaved and
 * alternating which goes first so that a slow minute of a shared machine falls on both.
 */
export interface KwokTools {
  kwokctl: string;
  /** kwok's controller (sigs.k8s.io/kwok/cmd/kwok). */
  kwok: string;
  etcd: string;
}

export interface KwokComparison {
  kubernetesVersion: string;
  runs: number;
  kwokctlMs: number[];
  tempkubeMs: number[];
}

const BIN = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "bin", "tempkube");
const CREATE_TIMEOUT_MS = 5 * 60_000;

/** The tools, each given or found beside kwokctl; a missing one is named with how to get it. */
export function kwokTools(kwokctl: string, kwok?: string, etcd?: string): KwokTools {
  const tools = { kwokctl, kwok: kwok ?? join(dirname(kwokctl), "kwok"), etcd: etcd ?? join(dirname(kwokctl), "etcd") };
  const how: Record<keyof KwokTools, string> = {
    kwokctl: "go install sigs.k8s.io/kwok/cmd/kwokctl@v0.8.0",
    kwok: "go install sigs.k8s.io/kwok/cmd/kwok@v0.8.0, or --kwok PATH",
    etcd: "--etcd PATH (scripts/conformance builds one: /var/cache/tempkube/conformance/<version>/suite/etcd)",
  };
  for (const [k, path] of Object.entries(tools) as [keyof KwokTools, string][])
    if (!existsSync(path))
      throw new TempkubeError("invalid-input", `--compare kwok: ${k} ${path} is missing (${how[k]})`);
  return tools;
}

export async function benchKwok(runs: number, tools: KwokTools, log: (l: string) => void): Promise<KwokComparison> {
  const release = defaultRelease();
  const work = await mkdtemp("/tmp/tkkw-");
  // Both tools keep their state here, not in the user's ~/.kwok or /var/lib/tempkube.
  const env = { ...process.env, KWOK_WORKDIR: join(work, "kwok"), TEMPKUBE_HOME: join(work, "tk") };
  const report: KwokComparison = { kubernetesVersion: release.version, runs, kwokctlMs: [], tempkubeMs: [] };
  const timed = async (args: [string, string[]]) => {
    const t = Date.now();
    await run(args[0], args[1], { env, timeoutMs: CREATE_TIMEOUT_MS, logFile: join(work, "commands.log") });
    return Date.now() - t;
  };
  const live: (() => Promise<unknown>)[] = [];
  try {
    for (let k = 0; k < runs; k++) {
      const name = `kw${newClusterId().slice(0, 6)}`;
      const kwokCreate: [string, string[]] = [
        tools.kwokctl,
        [
          "create",
          "cluster",
          "--name",
          name,
          "--runtime",
          "binary",
          "--kube-apiserver-binary",
          kubernetesBinary(release, "kube-apiserver"),
          "--kube-controller-manager-binary",
          kubernetesBinary(release, "kube-controller-manager"),
          "--kube-scheduler-binary",
          kubernetesBinary(release, "kube-scheduler"),
          "--etcd-binary",
          tools.etcd,
          "--kwok-controller-binary",
          tools.kwok,
          "--wait",
          "4m",
        ],
      ];
      const tempkubeCreate: [string, string[]] = [
        BIN,
        ["runtime", "create", "--id", name, "--kubeconfig", join(work, `${name}.kubeconfig`)],
      ];
      const kwokDelete = () =>
        run(tools.kwokctl, ["delete", "cluster", "--name", name], { env }).catch(() => undefined);
      const tempkubeDelete = () => run(BIN, ["runtime", "destroy", name], { env }).catch(() => undefined);
      live.push(kwokDelete, tempkubeDelete);
      const kwokFirst = k % 2 === 0;
      for (const which of kwokFirst ? ["kwok", "tempkube"] : ["tempkube", "kwok"]) {
        if (which === "kwok") report.kwokctlMs.push(await timed(kwokCreate));
        else report.tempkubeMs.push(await timed(tempkubeCreate));
        await (which === "kwok" ? kwokDelete() : tempkubeDelete());
      }
      live.splice(0);
      log(
        `  compare kwok: run ${k + 1}/${runs}: kwokctl ${report.kwokctlMs[k]} ms, tempkube ${report.tempkubeMs[k]} ms`,
      );
    }
  } finally {
    for (const cleanup of live) await cleanup();
    await rm(work, { recursive: true, force: true });
  }
  return report;
}

export function formatKwok(r: KwokComparison): string {
  const kw = median(r.kwokctlMs);
  const tk = median(r.tempkubeMs);
  const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  return (
    `tempkube bench --compare kwok: Kubernetes ${r.kubernetesVersion} binaries for both, ${r.runs} run(s) interleaved, each timed as a command\n` +
    `  kwokctl create cluster --runtime binary (no real node, no DNS)   p50 ${s(kw)}\n` +
    `  tempkube runtime create (a real node, CoreDNS answering)          p50 ${s(tk)}  (${(tk / kw).toFixed(2)}× kwokctl; target ≤ 0.8×)\n`
  );
}
