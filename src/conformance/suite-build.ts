import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { run } from "../util/exec.js";
import { cacheDir } from "../util/paths.js";
import type { KubernetesRelease } from "../setup/catalogue.js";
import { goEnv, kubernetesGoMod, kubernetesVersionLdflags } from "../setup/go-source-build.js";

/**
 * Upstream's e2e suite and the Go programs of its test images, built from the module proxy
 * with the same generated module as the release's components (go-source-build.ts: it
 * requires k8s.io/kubernetes and replaces each staging module with its published version).
 *
 * e2e.test as upstream's hack/lib/golang.sh builds test binaries (`make
 * WHAT=test/e2e/e2e.test`): `go test -c` of k8s.io/kubernetes/test/e2e with -trimpath,
 * tags selinux,notest,grpcnotrace and the version ldflags plus -s -w, so `e2e.test
 * --version` and the version checks of the suite see the release. agnhost with
 * `-X main.Version=<VERSION>` as test/images/agnhost/Makefile sets it.
 */
export const SUITE_FILES = ["e2e.test", "agnhost", "nnp"] as const;

export const E2E_PACKAGE = "k8s.io/kubernetes/test/e2e";
const PROGRAMS = {
  agnhost: "k8s.io/kubernetes/test/images/agnhost",
  nnp: "k8s.io/kubernetes/test/images/nonewprivs",
} as const;
/** hack/lib/golang.sh: gotags="selinux,notest${grpcnotrace}" for non-debug builds. */
export const E2E_BUILD_TAGS = "selinux,notest,grpcnotrace";

export function suiteBuildArgs(ldflags: string, outFile: string): string[] {
  return ["test", "-c", "-trimpath", "-tags", E2E_BUILD_TAGS, "-ldflags", ldflags, "-o", outFile, E2E_PACKAGE];
}

function toolsGo(): string {
  return `//go:build tools

// Keeps the suite's and the test images' packages in go.mod/go.sum; never compiled.
package tools

import (
\t_ "${E2E_PACKAGE}"
${Object.values(PROGRAMS)
  .map((p) => `\t_ "${p}"`)
  .join("\n")}
)
`;
}

export async function buildSuite(
  release: KubernetesRelease,
  agnhostVersion: string,
  outDir: string,
  logFile: string,
): Promise<void> {
  // Its own module directory: the components' one (go-modules/kubernetes-<v>) may be in use.
  const moduleDir = join(cacheDir(), "go-modules", `conformance-${release.version}`);
  await mkdir(moduleDir, { recursive: true });
  await writeFile(join(moduleDir, "go.mod"), kubernetesGoMod(release).replace("kubernetes-build", "conformance-build"));
  await writeFile(join(moduleDir, "tools.go"), toolsGo());
  const env = goEnv(false);
  await run("go", ["mod", "tidy"], { cwd: moduleDir, env, logFile });
  const info = JSON.parse(
    (await run("go", ["list", "-m", "-json", "k8s.io/kubernetes"], { cwd: moduleDir, env, logFile })).stdout,
  ) as { Time?: string };
  const ldflags = kubernetesVersionLdflags(release.version, info.Time ?? "1970-01-01T00:00:00Z");
  await run("go", ["build", "-trimpath", "-ldflags", `-s -w -X 'main.Version=${agnhostVersion}'`, "-o", join(outDir, "agnhost"), PROGRAMS.agnhost], {
    cwd: moduleDir,
    env,
    logFile,
  });
  await run("go", ["build", "-trimpath", "-ldflags", "-s -w", "-o", join(outDir, "nnp"), PROGRAMS.nnp], {
    cwd: moduleDir,
    env,
    logFile,
  });
  await run("go", suiteBuildArgs(ldflags, join(outDir, "e2e.test")), { cwd: moduleDir, env, logFile });
}
