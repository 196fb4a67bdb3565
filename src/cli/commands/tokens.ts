import type { Command } from "commander";
import { SIZE_PRESETS } from "../../core/cluster-spec.js";
import { DEFAULT_TENANT_LIMITS } from "../../core/quota.js";
import { TempkubeError } from "../../util/errors.js";
import { progress } from "../../util/progress.js";
import { ApiClient } from "../../client/api-client.js";
import { parseTtl } from "../flags.js";
import { print, table } from "../output.js";

type TokenView = {
  id: number;
  name: string;
  admin: boolean;
  createdAt: string;
  revokedAt: string | null;
  token?: string;
  limits: {
    maxClusters: number | null;
    maxTtlMinutes: number | null;
    sizes: string[] | null;
    privileged: boolean;
    maxServices?: number | null;
    maxServiceMinutes?: number | null;
  };
};

const limitsText = (t: TokenView) =>
  t.admin
    ? "admin (no limits)"
    : [
        `clusters ${t.limits.maxClusters ?? "∞"}`,
        `ttl ${t.limits.maxTtlMinutes === null ? "∞" : `${t.limits.maxTtlMinutes}m`}`,
        `sizes ${t.limits.sizes?.join("/") ?? "any"}`,
        t.limits.privileged ? "privileged" : "baseline",
        // A server from before services shows no service limits.
        ...(t.limits.maxServices === undefined
          ? []
          : [
              `services ${t.limits.maxServices ?? "∞"} for ${t.limits.maxServiceMinutes == null ? "∞" : `${t.limits.maxServiceMinutes}m`}`,
            ]),
      ].join(", ");

/** `tempkube token …`: API tokens and their limits (admins create, list, revoke). */
export function registerTokenCommands(program: Command): void {
  const group = program
    .command("token")
    .description("API tokens and their limits (create, list and revoke need an admin token)");

  group
    .command("create <name>")
    .description("Create a token; prints its secret once")
    .option(
      "--max-clusters <n>",
      `clusters running at once (default ${DEFAULT_TENANT_LIMITS.maxClusters}; 'none' for no limit)`,
    )
    .option(
      "--max-ttl <duration>",
      `longest time to live (default ${DEFAULT_TENANT_LIMITS.maxTtlMinutes! / 60}h; 'none' for no limit)`,
    )
    .option(
      "--sizes <list>",
      `allowed size presets, comma-separated (${Object.keys(SIZE_PRESETS).join(",")}; default all)`,
    )
    .option(
      "--privileged",
      "may create privileged clusters (their pods may be root on the host: for trusted users only)",
    )
    .option(
      "--max-services <n>",
      `ephemeral services at once (default ${DEFAULT_TENANT_LIMITS.maxServices}; 'none' for no limit)`,
    )
    .option(
      "--max-service-lifetime <duration>",
      `longest lifetime of a service (default ${DEFAULT_TENANT_LIMITS.maxServiceMinutes! / 60}h; 'none': the server's maximum)`,
    )
    .option("--admin", "an admin token: no limits, manages tokens, sees every cluster and service")
    .option("-o, --output <format>", "json or yaml")
    .addHelpText(
      "after",
      `
Example:
  $ sudo bin/tempkube token create ci --max-clusters 2 --max-ttl 2h --sizes 1-small,1-mid
  $ sudo bin/tempkube token create previews --max-clusters 0 --max-services 20 --max-service-lifetime 8h
  $ TEMPKUBE_TOKEN=tk_… bin/tempkube create --size 1-small`,
    )
    .action(
      async (
        name: string,
        o: {
          maxClusters?: string;
          maxTtl?: string;
          sizes?: string;
          maxServices?: string;
          maxServiceLifetime?: string;
          privileged?: boolean;
          admin?: boolean;
          output?: string;
        },
      ) => {
        const body: Record<string, unknown> = { name, admin: !!o.admin, privileged: !!o.privileged };
        if (o.maxClusters !== undefined) body.maxClusters = o.maxClusters === "none" ? null : count(o.maxClusters);
        if (o.maxTtl !== undefined) body.maxTtlMinutes = o.maxTtl === "none" ? null : parseTtl(o.maxTtl);
        if (o.maxServices !== undefined) body.maxServices = o.maxServices === "none" ? null : count(o.maxServices);
        if (o.maxServiceLifetime !== undefined)
          body.maxServiceMinutes =
            o.maxServiceLifetime === "none" ? null : parseTtl(o.maxServiceLifetime, "--max-service-lifetime");
        if (o.sizes !== undefined)
          body.sizes = o.sizes
            .split(",")
            .map((s) => s.trim())
            .filter(Boolean);
        const t = await (await ApiClient.fromEnvironment()).request<TokenView>("POST", "/v1/tokens", body);
        progress(`token ${t.id} "${t.name}": ${limitsText(t)}. The secret is shown only now:`);
        await print(o.output, t, () => `${t.token}\n`);
      },
    );

  group
    .command("list")
    .description("List tokens (never their secrets)")
    .option("-o, --output <format>", "json or yaml")
    .action(async (o: { output?: string }) => {
      const { items } = await (await ApiClient.fromEnvironment()).request<{ items: TokenView[] }>("GET", "/v1/tokens");
      await print(o.output, items, () =>
        table([
          ["ID", "NAME", "LIMITS", "CREATED", "REVOKED"],
          ...items.map((t) => [String(t.id), t.name, limitsText(t), t.createdAt, t.revokedAt ?? ""]),
        ]),
      );
    });

  group
    .command("revoke <id>")
    .description("Revoke a token at once; its clusters keep their lifetimes")
    .option("-o, --output <format>", "json or yaml")
    .action(async (id: string, o: { output?: string }) => {
      const t = await (await ApiClient.fromEnvironment()).request<TokenView>("DELETE", `/v1/tokens/${count(id)}`);
      await print(o.output, t, () => `token ${t.id} "${t.name}" revoked at ${t.revokedAt}\n`);
    });

  group
    .command("whoami")
    .description("The token in use: its name and limits")
    .option("-o, --output <format>", "json or yaml")
    .action(async (o: { output?: string }) => {
      const t = await (await ApiClient.fromEnvironment()).request<TokenView>("GET", "/v1/tokens/self");
      await print(o.output, t, () => `${t.name} (token ${t.id}): ${limitsText(t)}\n`);
    });
}

function count(text: string): number {
  if (!/^\d+$/.test(text)) throw new TempkubeError("invalid-input", `expected a whole number, not "${text}"`);
  return Number(text);
}
