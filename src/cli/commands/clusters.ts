import { writeFile } from "node:fs/promises";
import type { Command } from "commander";
import YAML from "yaml";
import { SIZE_PRESETS } from "../../core/cluster-spec.js";
import { TempkubeError } from "../../util/errors.js";
import { progress } from "../../util/log.js";
import { ApiClient } from "../api-client.js";
import { table } from "./versions.js";

type ClusterView = { id: string; name: string | null; phase: string; kubernetesVersion: string; size: string; expiresAt: string; lastError: string | null };

/** "30m", "2h", "90" (minutes) → minutes. */
export function parseTtl(text: string): number {
  const m = /^(\d+)\s*(m|min|h)?$/.exec(text.trim());
  if (!m) throw new TempkubeError("invalid-input", `--ttl must look like 30m or 2h, not "${text}"`);
  return Number(m[1]) * (m[2] === "h" ? 60 : 1);
}

function print(output: string | undefined, value: unknown, human: () => string): void {
  if (output === "json") process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  else if (output === "yaml") process.stdout.write(YAML.stringify(value));
  else process.stdout.write(human());
}

const describe = (c: ClusterView) => `${c.id}  ${c.phase}  Kubernetes ${c.kubernetesVersion}  ${c.size}  expires ${c.expiresAt}${c.lastError ? `\n  error: ${c.lastError}` : ""}\n`;

/** Cluster commands: clients of the REST API of `tempkube server`. */
export function registerClusterCommands(program: Command): void {
  program.command("create")
    .description("Create a cluster through the server; waits until it is ready and writes its kubeconfig")
    .option("--ttl <duration>", "time to live (30m, 2h)", "60m")
    .option("--keep", "stop instead of terminate at expiry")
    .option("--privileged", "allow privileged pods")
    .option("--size <preset>", `size preset: ${Object.keys(SIZE_PRESETS).join(", ")}`)
    .option("--version <minor>", "Kubernetes version")
    .option("--workers <n>", "worker nodes", "0")
    .option("--name <name>", "a name for humans")
    .option("--no-wait", "return at once instead of waiting until ready")
    .option("--kubeconfig <file>", "where to write the kubeconfig", "./kubeconfig")
    .option("-o, --output <format>", "json or yaml")
    .addHelpText("after", "\nExample:\n  $ bin/tempkube create --ttl 30m --kubeconfig ./kc && kubectl --kubeconfig ./kc get nodes")
    .action(async (o: { ttl: string; keep?: boolean; privileged?: boolean; size?: string; version?: string; workers: string; name?: string; wait: boolean; kubeconfig: string; output?: string }) => {
      const api = await ApiClient.fromEnvironment();
      const started = Date.now();
      if (o.wait) progress("creating a cluster and waiting until it is ready …");
      const c = await api.request<ClusterView>("POST", "/v1/clusters", {
        ttlMinutes: parseTtl(o.ttl), keep: !!o.keep, privileged: !!o.privileged, size: o.size, kubernetesVersion: o.version,
        workers: Number(o.workers), name: o.name, wait: o.wait,
      });
      if (c.phase === "failed") throw new TempkubeError("runtime", `cluster ${c.id} failed: ${c.lastError}`);
      if (c.phase === "running") {
        await writeFile(o.kubeconfig, await api.request<string>("GET", `/v1/clusters/${c.id}/kubeconfig`), { mode: 0o600 });
        progress(`cluster ${c.id} ready in ${((Date.now() - started) / 1000).toFixed(1)}s; kubeconfig: ${o.kubeconfig}`);
      }
      print(o.output, c, () => `${c.id}\n`);
    });

  program.command("list").description("List your clusters").option("-o, --output <format>", "json or yaml")
    .action(async (o: { output?: string }) => {
      const { items } = await (await ApiClient.fromEnvironment()).request<{ items: ClusterView[] }>("GET", "/v1/clusters");
      print(o.output, items, () => table([["ID", "PHASE", "VERSION", "SIZE", "EXPIRES"], ...items.map((c) => [c.id, c.phase, c.kubernetesVersion, c.size, c.expiresAt])]));
    });

  program.command("get <id>").description("Show a cluster").option("-o, --output <format>", "json or yaml")
    .action(async (id: string, o: { output?: string }) => {
      const c = await (await ApiClient.fromEnvironment()).request<ClusterView>("GET", `/v1/clusters/${id}`);
      print(o.output, c, () => describe(c));
    });

  program.command("kubeconfig <id>").description("Print a cluster's kubeconfig")
    .action(async (id: string) => {
      process.stdout.write(await (await ApiClient.fromEnvironment()).request<string>("GET", `/v1/clusters/${id}/kubeconfig`));
    });

  for (const [verb, what] of [["stop", "Stop a cluster (state kept)"], ["start", "Start a stopped cluster"]] as const) {
    program.command(`${verb} <id>`).description(what).option("-o, --output <format>", "json or yaml")
      .action(async (id: string, o: { output?: string }) => {
        const c = await (await ApiClient.fromEnvironment()).request<ClusterView>("POST", `/v1/clusters/${id}/${verb}?wait=true`);
        print(o.output, c, () => describe(c));
      });
  }

  program.command("extend <id>").description("Give a cluster a new expiry, counted from now").requiredOption("--ttl <duration>", "new time to live (30m, 2h)")
    .option("-o, --output <format>", "json or yaml")
    .action(async (id: string, o: { ttl: string; output?: string }) => {
      const c = await (await ApiClient.fromEnvironment()).request<ClusterView>("POST", `/v1/clusters/${id}/extend`, { ttlMinutes: parseTtl(o.ttl) });
      print(o.output, c, () => describe(c));
    });

  program.command("delete <id>").description("Terminate a cluster now").option("-o, --output <format>", "json or yaml")
    .action(async (id: string, o: { output?: string }) => {
      const c = await (await ApiClient.fromEnvironment()).request<ClusterView>("DELETE", `/v1/clusters/${id}?wait=true`);
      print(o.output, c, () => describe(c));
    });
}
