import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { captureStderr } from "../testing/capture-stderr.js";
import { run } from "../util/exec.js";
import { TempkubeError } from "../util/errors.js";
import { ArtifactDir } from "./artifact-dir.js";
import { ensureArtifact } from "./installer.js";

const MODULES = {
  installer: new URL("./installer.js", import.meta.url).href,
  artifactDir: new URL("./artifact-dir.js", import.meta.url).href,
};

/**
 * One build per artifact, host-wide, and a failed build that says where its log is. The cache
 * is the test's own (TEMPKUBE_CACHE); the "builds" write small files.
 */
describe("artifact builds", () => {
  let dir: string;
  let saved: string | undefined;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tempkube-build-"));
    saved = process.env.TEMPKUBE_CACHE;
    process.env.TEMPKUBE_CACHE = join(dir, "cache");
  });
  after(async () => {
    if (saved === undefined) delete process.env.TEMPKUBE_CACHE;
    else process.env.TEMPKUBE_CACHE = saved;
    await rm(dir, { recursive: true, force: true });
  });

  it("a second process wanting the same artifact waits for the first's build and uses it, building nothing", async () => {
    const root = join(dir, "cache", "things", "thing-v1");
    const started = join(dir, "child-building");
    // Another tempkube process (`versions install`, say) building the artifact slowly.
    const script = `
      const { ensureArtifact } = await import(${JSON.stringify(MODULES.installer)});
      const { ArtifactDir } = await import(${JSON.stringify(MODULES.artifactDir)});
      const { writeFile } = await import("node:fs/promises");
      await ensureArtifact("thing v1", new ArtifactDir(${JSON.stringify(root)}), { name: "thing", version: "v1", source: "test" },
        async (out) => {
          await writeFile(${JSON.stringify(started)}, "");
          await new Promise((r) => setTimeout(r, 1000));
          await writeFile(out + "/bin", "built by the child");
        });`;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
      stdio: "ignore",
      env: { ...process.env, TEMPKUBE_QUIET: "1" },
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    while (!existsSync(started)) await new Promise((r) => setTimeout(r, 20));

    const { lines, restore } = captureStderr();
    let built = false;
    let manifest;
    try {
      manifest = await ensureArtifact(
        "thing v1",
        new ArtifactDir(root),
        { name: "thing", version: "v1", source: "test" },
        async () => {
          built = true;
        },
      );
    } finally {
      restore();
    }
    assert.equal(await exited, 0);
    assert.equal(built, false, "the waiting process built nothing");
    assert.equal(await readFile(join(root, "bin"), "utf8"), "built by the child");
    assert.deepEqual(Object.keys(manifest.files), ["bin"]);
    assert.equal(lines()[0], `  … waiting for another build of thing v1 (pid ${child.pid})\n`);
    assert.match(lines()[1], /^ {2}✓ thing v1: built by another process meanwhile/);
    assert.equal(existsSync(`${root}.partial`), false);
    assert.equal(existsSync(`${root}.lock`), false, "lock released");
  });

  it("a build that fails in tempkube's own code names the artifact and its full log, and writes the failure there", async () => {
    const { restore } = captureStderr();
    let error: unknown;
    try {
      await ensureArtifact(
        "gadget v2",
        new ArtifactDir(join(dir, "cache", "gadget-v2")),
        { name: "gadget", version: "v2", source: "release" },
        async () => {
          throw new TempkubeError("setup", "download of https://example.invalid/gadget failed: HTTP 404");
        },
      );
    } catch (err) {
      error = err;
    } finally {
      restore();
    }
    const log = join(dir, "cache", "logs", "gadget-v2.log");
    assert.ok(error instanceof TempkubeError && error.type === "setup", String(error));
    assert.equal(
      (error as Error).message,
      `building gadget v2 failed: download of https://example.invalid/gadget failed: HTTP 404\nfull log: ${log}`,
    );
    // Written in the background: give it a moment.
    await new Promise((r) => setTimeout(r, 100));
    assert.match(await readFile(log, "utf8"), /tempkube: building gadget v2 failed: download of/);
    assert.equal(existsSync(join(dir, "cache", "gadget-v2")), false, "nothing half-built left as the artifact");
  });

  it("a build whose command fails names its full log once, with the command's last lines", async () => {
    const { restore } = captureStderr();
    let error: unknown;
    try {
      await ensureArtifact(
        "widget v3",
        new ArtifactDir(join(dir, "cache", "widget-v3")),
        { name: "widget", version: "v3", source: "source" },
        async (_out, logFile) => {
          await run("sh", ["-c", "echo compiling widget; echo 'widget.go:1: syntax error' >&2; exit 2"], { logFile });
        },
      );
    } catch (err) {
      error = err;
    } finally {
      restore();
    }
    const log = join(dir, "cache", "logs", "widget-v3.log");
    const message = (error as Error).message;
    assert.ok(message.startsWith("building widget v3 failed: sh -c "), message);
    assert.match(message, /exited with code 2/);
    assert.equal(message.split(`full log: ${log}`).length, 2, `the log named once: ${message}`);
    assert.match(message, /widget\.go:1: syntax error/);
    assert.match(await readFile(log, "utf8"), /compiling widget/);
  });
});
