import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { it } from "node:test";
import { run } from "../util/exec.js";
import { goEnv } from "./go-source-build.js";
import { LOCAL_TOOLS, localToolDir } from "./installer.js";

// The Go tools' own tests (tools/<name>/*_test.go): which CRD groups tenants may be granted.
for (const tool of LOCAL_TOOLS) {
  const hasTests = readdirSync(localToolDir(tool)).some((f) => f.endsWith("_test.go"));
  it(`tools/${tool}: go test`, { skip: !hasTests && "no Go tests" }, async () => {
    const { stdout } = await run("go", ["test", "-trimpath", "-count=1", "./..."], {
      cwd: localToolDir(tool),
      env: { ...goEnv(false), GOFLAGS: "-buildvcs=false -mod=readonly" },
      timeoutMs: 300_000,
    });
    assert.match(stdout, /^ok\s/m);
  });
}
