import { rmSync } from "node:fs";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultRelease } from "../setup/catalogue.js";
import { kubernetesBinary } from "../setup/installer.js";
import { run } from "../util/exec.js";
import YAML from "yaml";

/**
 * The kubeconfigs a test process wrote (credentials of clusters, however short-lived): gone
 * when the process exits, whether its tests passed or not.
 */
const kubeconfigDirs: string[] = [];
process.once("exit", () => {
  for (const dir of kubeconfigDirs) rmSync(dir, { recursive: true, force: true });
});

/** Runs the built kubectl against a kubeconfig; for tests that act as a user would. */
export class Kubectl {
  private constructor(readonly kubeconfigPath: string) {}

  static async withKubeconfig(kubeconfig: string): Promise<Kubectl> {
    const dir = await mkdtemp(join(tmpdir(), "tempkube-test-"));
    kubeconfigDirs.push(dir);
    const path = join(dir, "kubeconfig");
    await writeFile(path, kubeconfig, { mode: 0o600 });
    return new Kubectl(path);
  }

  /** The same cluster as `base`, as the holder of a bearer token (a ServiceAccount's, say). */
  static async withToken(base: Kubectl, token: string): Promise<Kubectl> {
    const config = YAML.parse(await readFile(base.kubeconfigPath, "utf8")) as {
      users: { name: string; user: Record<string, string> }[];
    };
    for (const u of config.users) u.user = { token };
    return Kubectl.withKubeconfig(YAML.stringify(config));
  }

  async run(args: string[], input?: string, timeoutMs = 120_000): Promise<string> {
    const { stdout } = await run(
      kubernetesBinary(defaultRelease(), "kubectl"),
      ["--kubeconfig", this.kubeconfigPath, ...args],
      { input, timeoutMs },
    );
    return stdout;
  }

  /** Runs and returns the error text instead of throwing (for requests that must be refused). */
  async refusal(args: string[], input?: string): Promise<string | undefined> {
    try {
      await this.run(args, input);
      return undefined;
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    }
  }
}
