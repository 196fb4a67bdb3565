import type { Command } from "commander";
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { gatewayCaPath, GatewayPaths, type GatewayConfig } from "../../gateway/gateway-files.js";
import { dataDir } from "../../util/paths.js";

/**
 * The gateway outlives `tempkube server` on purpose (open watches and `logs -f` survive a
 * restart); these let an operator see it and stop it.
 */
export function registerGateway(program: Command): void {
  const gateway = program
    .command("gateway")
    .description("The gateway the server runs in front of every cluster (it keeps running when the server stops)")
    .option("--data-dir <dir>", "the server's data dir (default $TEMPKUBE_HOME or /var/lib/tempkube)")
    .addHelpText(
      "after",
      `
Examples:
  $ sudo bin/tempkube gateway status
  $ sudo bin/tempkube gateway stop      # cuts every connection through it; the next server start starts it again
  $ curl --cacert "$(sudo bin/tempkube gateway ca)" https://<service host>:<gateway port>/`,
    );
  const dirOf = () => {
    const opts = gateway.opts<{ dataDir?: string }>();
    return opts.dataDir ? resolve(opts.dataDir) : dataDir();
  };
  gateway
    .command("status")
    .description("Whether it runs, and where it listens")
    .action(async () => {
      const dir = dirOf();
      const paths = new GatewayPaths(dir);
      const config = await readFile(paths.config, "utf8").then(
        (t) => JSON.parse(t) as GatewayConfig,
        () => undefined,
      );
      const { gatewayRunning } = await import("../../gateway/gateway-process.js");
      const running = await gatewayRunning(dir);
      process.stdout.write(
        `${running ? "running" : "not running"}` +
          (config
            ? `: TLS ${config.listen.host}:${config.listen.port}, HTTP ${config.httpListen.host}:${config.httpListen.port}, ` +
              `public address ${config.publicAddress}, cluster domain ${config.clusterDomain}`
            : " (no server has configured one in this data dir)") +
          `\nlog: ${paths.logDir}/gateway.log\n`,
      );
    });
  gateway
    .command("ca")
    .description("Where the CA of the gateway's HTTPS certificates is (what clients trust for services' HTTPS)")
    .option("--pem", "print the certificate itself, not its path")
    .action(async (opts: { pem?: boolean }) => {
      const file = gatewayCaPath(new GatewayPaths(dirOf()));
      const pem = await readFile(file, "utf8").catch((err: NodeJS.ErrnoException) => {
        if (err.code !== "ENOENT") throw err;
        return undefined;
      });
      if (pem === undefined) {
        process.stderr.write(`no gateway CA at ${file} yet: the gateway makes it when it first starts\n`);
        process.exitCode = 1;
        return;
      }
      process.stdout.write(opts.pem ? pem : `${file}\n`);
    });
  gateway
    .command("stop")
    .description("Stop it (connections through it are cut)")
    .action(async () => {
      const dir = dirOf();
      const { gatewayRunning, stopGateway } = await import("../../gateway/gateway-process.js");
      const was = await gatewayRunning(dir);
      await stopGateway(dir);
      process.stdout.write(was ? "gateway stopped\n" : "gateway was not running\n");
    });
}
