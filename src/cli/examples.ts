import type { Command } from "commander";

/**
 * Examples for the commands whose own file does not add them, so that every `--help`
 * ends with one. Keyed by the command's path below `tempkube`.
 */
const EXAMPLES: Record<string, string[]> = {
  list: ["bin/tempkube list", "bin/tempkube list --label pr=42 -o json"],
  get: ["bin/tempkube get abc12345", "bin/tempkube get abc12345 -o yaml"],
  stop: ["bin/tempkube stop abc12345            # waits until stopped; state kept"],
  start: ["bin/tempkube start abc12345           # waits until running again"],
  delete: ["bin/tempkube delete abc12345"],
  "service list": ["bin/tempkube service list", "bin/tempkube service list -o json"],
  "service get": ["bin/tempkube service get c0nddh7s3ok4clog56n0"],
  "token list": ["sudo bin/tempkube token list"],
  "token revoke": ["sudo bin/tempkube token revoke 3"],
  "token whoami": ["TEMPKUBE_TOKEN=tk_… bin/tempkube token whoami"],
  "runtime list": ["sudo bin/tempkube runtime list"],
  "runtime status": ["sudo bin/tempkube runtime status abc12345"],
  "runtime stop": ["sudo bin/tempkube runtime stop abc12345"],
  "runtime start": ["sudo bin/tempkube runtime start abc12345"],
  "runtime destroy": ["sudo bin/tempkube runtime destroy abc12345"],
  "runtime kubeconfig": [
    "sudo bin/tempkube runtime kubeconfig abc12345 > kc",
    "sudo bin/tempkube runtime kubeconfig abc12345 --admin > admin.kc",
  ],
  "runtime load-image": [
    "sudo bin/tempkube runtime load-image ./app.tar                 # every cluster",
    "sudo bin/tempkube runtime load-image ./app.tar --cluster abc12345",
  ],
  "versions install": ["sudo bin/tempkube versions install 1.33"],
};

export function addExamples(program: Command): void {
  const visit = (cmd: Command, path: string[]) => {
    for (const sub of cmd.commands) {
      const name = [...path, sub.name()].join(" ");
      const lines = EXAMPLES[name];
      if (lines)
        sub.addHelpText(
          "after",
          `\nExample${lines.length > 1 ? "s" : ""}:\n${lines.map((l) => `  $ ${l}`).join("\n")}`,
        );
      visit(sub, [...path, sub.name()]);
    }
  };
  visit(program, []);
}
