import type { Command } from "commander";
import { ApiClient, type ServiceView } from "../../client/api-client.js";
import { notificationEmailProblem } from "../../core/service-notifications.js";
import { TempkubeError } from "../../util/errors.js";
import { progress } from "../../util/progress.js";
import { parseTtl } from "../flags.js";
import { print, table } from "../output.js";

const describe = (s: ServiceView) => {
  const lines = [`${s.id}  ${s.phase}  ${s.image} port ${s.port}  expires ${s.expirationTime}`];
  lines.push(s.url ? `  ${s.url}` : "  not serving yet (host appears once a request through the route answers)");
  for (const c of s.conditions)
    if (c.status !== "True")
      lines.push(`  ${c.type} ${c.status}${c.reason ? `: ${c.reason}` : ""}${c.message ? ` (${c.message})` : ""}`);
  return `${lines.join("\n")}\n`;
};

function port(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 65535)
    throw new TempkubeError("invalid-input", `--port must be a number from 1 to 65535, not "${text}"`);
  return Number(text);
}

/** `tempkube service …`: ephemeral services (an image and a port for some minutes, at a URL), through the server. */
export function registerServiceCommands(program: Command): void {
  const group = program
    .command("service")
    .description("Ephemeral services: an image and a port served at a URL for some minutes, then gone");

  group
    .command("create")
    .description("Create a service from a preset of the server's --services-config, or from an image and a port")
    .option("--preset <name>", "a preset of the server's --services-config")
    .option("--image <ref>", "the image to run (instead of a preset); load your own with `runtime load-image`")
    .option("--port <n>", "the port it serves HTTP on (with --image)")
    .option("--lifetime <duration>", "how long it lives (30m, 2h)", "60m")
    .option("--notify-email <address>", "where notifications go (service available, service expired)")
    .option("--wait", "answer once it serves (or fails), and print its URL")
    .option("-o, --output <format>", "json or yaml")
    .addHelpText(
      "after",
      `
Examples:
  $ bin/tempkube service create --preset web --lifetime 30m --wait
  $ bin/tempkube service create --preset web --lifetime 2h --notify-email dev@example.com
  $ bin/tempkube service create --image busybox:1.37 --port 8080 --wait -o json`,
    )
    .action(
      async (o: {
        preset?: string;
        image?: string;
        port?: string;
        lifetime: string;
        notifyEmail?: string;
        wait?: boolean;
        output?: string;
      }) => {
        if (!o.preset === !o.image) throw new TempkubeError("invalid-input", "give --preset, or --image with --port");
        if (o.image && !o.port) throw new TempkubeError("invalid-input", "--image needs --port");
        if (o.preset && o.port) throw new TempkubeError("invalid-input", "--port goes with --image, not --preset");
        const emailProblem =
          o.notifyEmail === undefined ? undefined : notificationEmailProblem(o.notifyEmail, "--notify-email");
        if (emailProblem) throw new TempkubeError("invalid-input", emailProblem);
        const api = await ApiClient.fromEnvironment();
        const s = await api.createService({
          ...(o.preset ? { preset: o.preset } : { service: { image: o.image!, port: port(o.port!) } }),
          lifetimeMinutes: parseTtl(o.lifetime, "--lifetime"),
          ...(o.notifyEmail !== undefined ? { notificationEmail: o.notifyEmail } : {}),
          wait: !!o.wait,
        });
        await print(o.output, s, () => (o.wait ? describe(s) : `${s.id}\n`));
        if (!o.wait)
          return progress(
            `service ${s.id} is on its way; \`tempkube service get ${s.id}\` shows its URL once it serves`,
          );
        if (s.phase === "failed") throw new TempkubeError("runtime", `service ${s.id} failed: ${failure(s)}`);
        if (!s.host)
          throw new TempkubeError(
            "timeout",
            `service ${s.id} does not serve yet; \`tempkube service get ${s.id}\` shows it later`,
          );
      },
    );

  group
    .command("list")
    .description("List your services (an admin token: all)")
    .option("-o, --output <format>", "json or yaml")
    .action(async (o: { output?: string }) => {
      const items = await (await ApiClient.fromEnvironment()).listServices();
      await print(o.output, items, () =>
        table([
          ["ID", "PHASE", "URL", "EXPIRES", "IMAGE"],
          ...items.map((s) => [s.id, s.phase, s.url ?? "", s.expirationTime, s.image]),
        ]),
      );
    });

  group
    .command("get <id>")
    .description("Show a service: its URL once it serves, its expiry, its conditions")
    .option("-o, --output <format>", "json or yaml")
    .action(async (id: string, o: { output?: string }) => {
      const s = await (await ApiClient.fromEnvironment()).getService(id);
      await print(o.output, s, () => describe(s));
    });

  group
    .command("extend <id>")
    .description("Give a service a new expiry, counted from now")
    .requiredOption("--lifetime <duration>", "new lifetime from now (30m, 2h)")
    .option("-o, --output <format>", "json or yaml")
    .addHelpText("after", "\nExample:\n  $ bin/tempkube service extend c0nddh7s3ok4clog56n0 --lifetime 2h")
    .action(async (id: string, o: { lifetime: string; output?: string }) => {
      const s = await (await ApiClient.fromEnvironment()).extendService(id, parseTtl(o.lifetime, "--lifetime"));
      await print(o.output, s, () => describe(s));
    });

  group
    .command("delete <id>")
    .description("Delete a service now, with everything it owns")
    .addHelpText("after", "\nExample:\n  $ bin/tempkube service delete c0nddh7s3ok4clog56n0")
    .action(async (id: string) => {
      await (await ApiClient.fromEnvironment()).deleteService(id);
      progress(`service ${id} deleted`);
    });
}

function failure(s: ServiceView): string {
  const c = s.conditions.find((c) => c.status === "False" && c.reason);
  return c ? `${c.type} ${c.reason}${c.message ? ` (${c.message})` : ""}` : "no reason reported";
}
