#!/usr/bin/env node
import { Command } from "commander";
import { useCaFile } from "../client/api-client.js";
import { TempkubeError } from "../util/errors.js";
import { registerBench } from "./commands/bench.js";
import { registerClusterCommands } from "./commands/clusters.js";
import { registerDoctor } from "./commands/doctor.js";
import { registerEphemeron } from "./commands/ephemeron.js";
import { registerGateway } from "./commands/gateway.js";
import { registerKubectl } from "./commands/kubectl.js";
import { registerRuntime, registerUp } from "./commands/runtime.js";
import { registerServer } from "./commands/server.js";
import { registerServiceCommands } from "./commands/services.js";
import { registerSetup } from "./commands/setup.js";
import { registerTokenCommands } from "./commands/tokens.js";
import { registerVersions } from "./commands/versions.js";
import { addExamples } from "./examples.js";
import { exitCodeFor } from "./exit-codes.js";

const program = new Command()
  .name("tempkube")
  .description("Throwaway, isolated, real Kubernetes clusters in seconds.")
  .showHelpAfterError("(run with --help for usage)")
  // Every command's --help lists --ca-file under "Global Options".
  .configureHelp({ showGlobalOptions: true })
  .option(
    "--ca-file <file>",
    "CA certificate (PEM) to trust for an https TEMPKUBE_URL, e.g. the server's <data dir>/api-tls/server.crt (default $TEMPKUBE_CA_FILE)",
  )
  // A global option: commander reads it before or after the subcommand; the client picks it up.
  .hook("preAction", (cmd) => useCaFile((cmd.opts() as { caFile?: string }).caFile));

registerSetup(program);
registerVersions(program);
registerKubectl(program);
registerDoctor(program);
registerUp(program);
registerRuntime(program);
registerBench(program);
registerServer(program);
registerGateway(program);
registerClusterCommands(program);
registerTokenCommands(program);
registerServiceCommands(program);
registerEphemeron(program);
addExamples(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`tempkube: ${message}\n`);
  process.exitCode = exitCodeFor(err instanceof TempkubeError ? err.type : undefined);
});
