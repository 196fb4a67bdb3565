import { writeFile } from "node:fs/promises";
import { basename } from "node:path";
import type { Command } from "commander";
import type { Phase } from "../../core/cluster-record.js";
import { DEFAULT_TTL_MINUTES, SIZE_PRESETS } from "../../core/cluster-spec.js";
import { TempkubeError } from "../../util/errors.js";
import { progress, seconds } from "../../util/progress.js";
import { ApiClient } from "../../client/api-client.js";
import { parseLabels, parseTtl } from "../flags.js";
import { mergeKubeconfig, removeFromKubeconfig, userKubeconfigPath } from "../kubeconfig-file.js";
import { print, table } from "../output.js";

type ClusterView = {
  id: string;
  name: string | null;
  phase: Phase;
  kubernetesVersion: string;
  /** Only when the nodes' kubelet is not the control plane's release (a cgroup v1 host). */
  kubeletVersion?: string;
  kubeletReason?: string;
  size: string;
  expiresAt: string;
  lastError: string | null;
  endpoint?: string | null;
  phaseTimingsMs?: Record<string, number>;
  frozen?: boolean;
};

const describe = (c: ClusterView) =>
  `${c.id}  ${c.phase}${c.phase === "sleeping" ? " (the next connection wakes it)" : ""}${c.frozen ? " (frozen while idle: the next connection thaws it)" : ""}  Kubernetes ${c.kubernetesVersion}${c.kubeletVersion ? ` (nodes: kubelet ${c.kubeletVersion})` : ""}  ${c.size}  expires ${c.expiresAt}${c.endpoint ? `  ${c.endpoint}` : ""}${c.kubeletReason ? `\n  ${c.kubeletReason}` : ""}${c.lastError ? `\n  error: ${c.lastError}` : ""}\n`;

/** Phases an operation ends in: a change to one of these is the last line of a follow. */
const SETTLED = new Set(["running", "sleeping", "stopped", "terminated", "failed"]);

/**
 * Runs an operation with `?follow=true`, one request in all: prints each phase as it ends
 * with its duration ("  ✓ provisioning (6.1s)"), then the runtime's own step timings when it
 * reports them; returns the cluster as it settled and, for a create or start that ends
 * running, its kubeconfig.
 */
async function followOperation(
  api: ApiClient,
  method: string,
  path: string,
  body?: unknown,
  onFirst?: (c: ClusterView) => void,
): Promise<{ cluster: ClusterView; kubeconfig?: string }> {
  let first: ClusterView | undefined;
  let c: ClusterView | undefined;
  let kubeconfig: string | undefined;
  let failure: string | undefined;
  let since = Date.now();
  await api.stream<{ cluster?: ClusterView; kubeconfig?: string; error?: string } & Partial<ClusterView>>(
    method,
    `${path}${path.includes("?") ? "&" : "?"}follow=true`,
    body,
    (item) => {
      if (item.error) failure = item.error;
      if (item.kubeconfig) kubeconfig = item.kubeconfig;
      // A server without streaming answers the plain cluster: shown, then settled as it is.
      const next = item.cluster ?? (item.id ? (item as ClusterView) : undefined);
      if (!next) return;
      if (!first) {
        first = next;
        onFirst?.(next);
        progress(`  … ${next.phase}`);
      } else if (next.phase !== c!.phase) {
        progress(`  ✓ ${c!.phase} (${seconds(Date.now() - since)})`);
        since = Date.now();
        if (!SETTLED.has(next.phase)) progress(`  … ${next.phase}`);
      }
      c = next;
    },
  );
  if (failure) throw new TempkubeError("runtime", failure);
  if (!c || !first) throw new TempkubeError("runtime", `the server answered ${method} ${path} with no cluster`);
  const steps = Object.entries(c.phaseTimingsMs ?? {}).filter(([k]) => k !== "total");
  if (steps.length && first.phase !== "running")
    progress(`    ${steps.map(([k, ms]) => `${k} ${seconds(ms)}`).join(", ")}`);
  return { cluster: c, kubeconfig };
}

const failedError = (c: ClusterView) =>
  new TempkubeError("runtime", `cluster ${c.id} failed: ${c.lastError ?? "no reason recorded"}`);

/** Cluster commands: clients of the REST API of `tempkube server`. */
export function registerClusterCommands(program: Command): void {
  program
    .command("create")
    .description(
      "Create a cluster through the server; waits until it is ready (live progress) and writes its kubeconfig",
    )
    .option("--ttl <duration>", "time to live (30m, 2h)", `${DEFAULT_TTL_MINUTES}m`)
    .option("--keep", "stop instead of terminate at expiry")
    .option(
      "--idle <duration>",
      "sleep after this long without a connection (15m, 1h; 0: never); the next connection wakes it (default: the server's)",
    )
    .option(
      "--privileged",
      "allow privileged pods (root on the host on the local runtime; needs a token made with --privileged)",
    )
    .option("--size <preset>", `size preset: ${Object.keys(SIZE_PRESETS).join(", ")}`)
    .option("--version <minor>", "Kubernetes version")
    .option("--workers <n>", "worker nodes", "0")
    .option("--name <name>", "a name for humans")
    .option("--label <key=value...>", "labels to find the cluster by (repeatable)")
    .option("--email <address>", "where notifications go (ready, expiry warning, stopped, terminated)")
    .option("--no-wait", "return at once instead of waiting until ready")
    .option("--kubeconfig <file>", "where to write the kubeconfig (default ./kubeconfig, or none with --merge)")
    .option(
      "--merge",
      "merge the kubeconfig into yours ($KUBECONFIG or ~/.kube/config) and make it the current context",
    )
    .option("-o, --output <format>", "json or yaml")
    .addHelpText(
      "after",
      `
Examples:
  $ bin/tempkube create --ttl 30m --kubeconfig ./kc && kubectl --kubeconfig ./kc get nodes
  $ bin/tempkube create --merge && kubectl get nodes
  $ id=$(bin/tempkube create --ttl 2h --keep --label ci=pr-42 2>/dev/null)
  $ bin/tempkube create --ttl 8h --idle 15m   # sleeps after 15 idle minutes; kubectl wakes it`,
    )
    .action(
      async (o: {
        ttl: string;
        keep?: boolean;
        idle?: string;
        privileged?: boolean;
        size?: string;
        version?: string;
        workers: string;
        name?: string;
        label?: string[];
        email?: string;
        wait: boolean;
        kubeconfig?: string;
        merge?: boolean;
        output?: string;
      }) => {
        const api = await ApiClient.fromEnvironment();
        const started = Date.now();
        const body = {
          ttlMinutes: parseTtl(o.ttl),
          keep: !!o.keep,
          idleMinutes: o.idle === undefined ? undefined : parseTtl(o.idle, "--idle"),
          privileged: !!o.privileged,
          size: o.size,
          kubernetesVersion: o.version,
          workers: wholeNumber("--workers", o.workers),
          name: o.name,
          labels: parseLabels(o.label),
          notificationEmail: o.email,
        };
        let c: ClusterView;
        if (!o.wait) c = await api.request<ClusterView>("POST", "/v1/clusters", body);
        else {
          const followed = await followOperation(api, "POST", "/v1/clusters", body, (first) =>
            progress(`cluster ${first.id}${first.phase === "running" ? " (from the warm pool)" : ""}:`),
          );
          c = followed.cluster;
          if (c.phase === "failed") throw failedError(c);
          const kubeconfig =
            followed.kubeconfig ?? (await api.request<string>("GET", `/v1/clusters/${c.id}/kubeconfig`));
          const written: string[] = [];
          if (o.kubeconfig || !o.merge) {
            const file = o.kubeconfig ?? "./kubeconfig";
            await writeFile(file, kubeconfig, { mode: 0o600 });
            written.push(file);
          }
          if (o.merge) {
            const path = userKubeconfigPath();
            const context = await mergeKubeconfig(path, kubeconfig);
            written.push(`${path} (context ${context}, now current)`);
          }
          progress(`cluster ${c.id} ready in ${seconds(Date.now() - started)}; kubeconfig: ${written.join(" and ")}`);
        }
        await print(o.output, c, () => `${c.id}\n`);
      },
    );

  program
    .command("list")
    .description("List your clusters")
    .option("--label <key=value...>", "only clusters with these labels")
    .option("-o, --output <format>", "json or yaml")
    .action(async (o: { output?: string; label?: string[] }) => {
      const selector = Object.entries(parseLabels(o.label) ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(",");
      const { items } = await (
        await ApiClient.fromEnvironment()
      ).request<{ items: ClusterView[] }>(
        "GET",
        `/v1/clusters${selector ? `?label=${encodeURIComponent(selector)}` : ""}`,
      );
      await print(o.output, items, () =>
        table([
          ["ID", "NAME", "PHASE", "VERSION", "SIZE", "EXPIRES"],
          ...items.map((c) => [
            c.id,
            c.name ?? "",
            c.frozen ? `${c.phase} (frozen)` : c.phase,
            c.kubeletVersion ? `${c.kubernetesVersion} (kubelet ${c.kubeletVersion})` : c.kubernetesVersion,
            c.size,
            c.expiresAt,
          ]),
        ]),
      );
    });

  program
    .command("get <id>")
    .description("Show a cluster")
    .option("-o, --output <format>", "json or yaml")
    .action(async (id: string, o: { output?: string }) => {
      const c = await (await ApiClient.fromEnvironment()).request<ClusterView>("GET", `/v1/clusters/${id}`);
      await print(o.output, c, () => describe(c));
    });

  program
    .command("kubeconfig <id>")
    .description("Print a cluster's kubeconfig, or merge it into yours")
    .option("--merge", "merge into $KUBECONFIG or ~/.kube/config and make it the current context")
    .addHelpText(
      "after",
      "\nExamples:\n  $ bin/tempkube kubeconfig abc12345 > kc\n  $ bin/tempkube kubeconfig abc12345 --merge",
    )
    .action(async (id: string, o: { merge?: boolean }) => {
      const kubeconfig = await (
        await ApiClient.fromEnvironment()
      ).request<string>("GET", `/v1/clusters/${id}/kubeconfig`);
      if (!o.merge) return void process.stdout.write(kubeconfig);
      const path = userKubeconfigPath();
      progress(`merged into ${path}; current context: ${await mergeKubeconfig(path, kubeconfig)}`);
    });

  for (const [verb, what] of [
    ["stop", "Stop a cluster (state kept)"],
    ["start", "Start a stopped cluster, or wake a sleeping one"],
  ] as const) {
    program
      .command(`${verb} <id>`)
      .description(what)
      .option("--no-wait", "return at once")
      .option("-o, --output <format>", "json or yaml")
      .action(async (id: string, o: { output?: string; wait: boolean }) => {
        const api = await ApiClient.fromEnvironment();
        const c = o.wait
          ? (await followOperation(api, "POST", `/v1/clusters/${id}/${verb}`)).cluster
          : await api.request<ClusterView>("POST", `/v1/clusters/${id}/${verb}`);
        if (c.phase === "failed") throw failedError(c);
        await print(o.output, c, () => describe(c));
      });
  }

  program
    .command("extend <id>")
    .description("Give a cluster a new expiry, counted from now")
    .requiredOption("--ttl <duration>", "new time to live (30m, 2h)")
    .option("-o, --output <format>", "json or yaml")
    .addHelpText("after", "\nExample:\n  $ bin/tempkube extend abc12345 --ttl 2h")
    .action(async (id: string, o: { ttl: string; output?: string }) => {
      const c = await (
        await ApiClient.fromEnvironment()
      ).request<ClusterView>("POST", `/v1/clusters/${id}/extend`, { ttlMinutes: parseTtl(o.ttl) });
      await print(o.output, c, () => describe(c));
    });

  program
    .command("delete <id>")
    .description("Terminate a cluster now (and take it out of your kubeconfig if merged)")
    .option("--no-wait", "return at once")
    .option("-o, --output <format>", "json or yaml")
    .action(async (id: string, o: { output?: string; wait: boolean }) => {
      const api = await ApiClient.fromEnvironment();
      const c = o.wait
        ? (await followOperation(api, "DELETE", `/v1/clusters/${id}`)).cluster
        : await api.request<ClusterView>("DELETE", `/v1/clusters/${id}`);
      const removed = await removeFromKubeconfig(userKubeconfigPath(), id).catch(() => 0);
      if (removed) progress(`removed cluster ${id} from ${userKubeconfigPath()}`);
      await print(o.output, c, () => describe(c));
    });

  program
    .command("load-image <archive>")
    .description(
      "Load an image archive (docker save / OCI tar) through the server: into one of your clusters, or every cluster (admin)",
    )
    .option("--cluster <id>", "load into this running cluster only")
    .addHelpText(
      "after",
      "\nExamples:\n  $ bin/tempkube load-image ./myapp.tar --cluster abc12345\n  $ sudo bin/tempkube load-image ./myapp.tar   # every cluster on the host (admin token)",
    )
    .action(async (archive: string, o: { cluster?: string }) => {
      const query = new URLSearchParams({
        name: basename(archive)
          .replace(/[^A-Za-z0-9._-]/g, "_")
          .slice(0, 100),
      });
      if (o.cluster) query.set("cluster", o.cluster);
      const started = Date.now();
      const res = await (
        await ApiClient.fromEnvironment()
      ).upload<{ into: string; bytes: number; images?: string[] }>(`/v1/images?${query}`, archive);
      progress(
        `loaded ${archive} (${(res.bytes / 2 ** 20).toFixed(1)} MiB) into ${res.into} in ${seconds(Date.now() - started)}${res.images?.length ? `: ${res.images.join(", ")}` : ""}`,
      );
    });
}

function wholeNumber(flag: string, text: string): number {
  if (!/^\d+$/.test(text)) throw new TempkubeError("invalid-input", `${flag} must be a whole number, not "${text}"`);
  return Number(text);
}
