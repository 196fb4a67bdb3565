#!/usr/bin/env node
import { Command } from "commander";
import { TempkubeError } from "../util/errors.js";
import { registerBench } from "./commands/bench.js";
import { registerClusterCommands } from "./commands/clusters.js";
import { registerDoctor } from "./commands/doctor.js";
import { registerKubectl } from "./commands/kubectl.js";
import { registerRuntime, registerUp } from "./commands/runtime.js";
import { registerServer } from "./commands/server.js";
import { registerSetup } from "./commands/setup.js";
import { registerTokenCommands } from "./commands/tokens.js";
import { registerVersions } from "./commands/versions.js";
import { addExamples } from "./examples.js";
import { exitCodeFor } from "./exit-codes.js";

const program = new Command()
  .name("tempkube")
  .description("Throwaway, isolated, real Kubernetes clusters in seconds.")
  .showHelpAfterError("(run with --help for usage)");

registerSetup(program);
registerVersions(program);
registerKubectl(program);
registerDoctor(program);
registerUp(program);
registerRuntime(program);
registerBench(program);
registerServer(program);
registerClusterCommands(program);
registerTokenCommands(program);
addExamples(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`tempkube: ${message}\n`);
  process.exitCode = exitCodeFor(err instanceof TempkubeError ? err.type : undefined);
});
