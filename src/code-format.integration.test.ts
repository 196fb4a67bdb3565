import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { it } from "node:test";
import { fileURLToPath } from "node:url";
import { run } from "./util/exec.js";

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

// The code's one format (prettier, 120 columns: .prettierrc.json); `npm run format` writes it.
it("the TypeScript sources are formatted (npm run format fixes them)", async () => {
  const result = await run(join(REPO_ROOT, "node_modules", ".bin", "prettier"), ["--check", "src/**/*.ts"], {
    cwd: REPO_ROOT,
    okCodes: [0, 1],
  });
  assert.equal(result.code, 0, `not formatted:\n${result.stdout}${result.stderr}`);
});
