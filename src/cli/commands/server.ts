import type { Command } from "commander";
import { startServer } from "../../server/server.js";
import { TempkubeError } from "../../util/errors.js";
import { progress } from "../../util/log.js";

export function registerServer(program: Command): void {
  program
    .command("server")
    .description("Run the tempkube service (REST API, lifetime controller) on the local runtime")
    .option("--listen <host:port>", "address to listen on", "127.0.0.1:7780")
    .option("--data-dir <dir>", "store and cluster data (default $TEMPKUBE_HOME or /var/lib/tempkube)")
    .addHelpText("after", `
On first start it writes an admin token to <data dir>/admin-token (mode 0600).
Example:
  $ sudo bin/tempkube server
  $ curl -H "Authorization: Bearer $(sudo cat /var/lib/tempkube/admin-token)" http://127.0.0.1:7780/v1/clusters`)
    .action(async (opts: { listen: string; dataDir?: string }) => {
      const match = /^(.+):(\d+)$/.exec(opts.listen);
      if (!match) throw new TempkubeError("invalid-input", `--listen must be host:port, not "${opts.listen}"`);
      const server = await startServer({ host: match[1], port: Number(match[2]), dataDir: opts.dataDir });
      progress(`tempkube server listening on ${server.url}; admin token in ${server.adminTokenFile}`);
      await new Promise<void>((resolve) => {
        process.once("SIGINT", resolve);
        process.once("SIGTERM", resolve);
      });
      progress("tempkube server stopping (clusters keep running)");
      await server.close();
    });
}
