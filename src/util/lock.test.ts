import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { captureStderr } from "../testing/capture-stderr.js";
import { withFileLock } from "./lock.js";

const LOCK_MODULE = new URL("./lock.js", import.meta.url).href;

/** Another process holding the lock at `path` for `holdMs`; resolves once it holds it. */
async function holderProcess(path: string, marker: string, holdMs: number) {
  const script = `
    const { withFileLock } = await import(${JSON.stringify(LOCK_MODULE)});
    const { writeFile } = await import("node:fs/promises");
    await withFileLock(${JSON.stringify(path)}, "test", async () => {
      await writeFile(${JSON.stringify(marker)}, "in");
      await new Promise((r) => setTimeout(r, ${holdMs}));
      await writeFile(${JSON.stringify(marker)}, "out");
    });`;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
    stdio: "ignore",
    env: { ...process.env, TEMPKUBE_QUIET: "1" },
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  while (!existsSync(marker)) await new Promise((r) => setTimeout(r, 20));
  return { pid: child.pid!, exited };
}

describe("file lock between processes", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tempkube-lock-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("waits for another process's lock, says whose, then takes it", async () => {
    const path = join(dir, "a.lock");
    const marker = join(dir, "a.marker");
    const holder = await holderProcess(path, marker, 800);
    const { lines, restore } = captureStderr();
    let sawHolder: string | undefined;
    try {
      await withFileLock(
        path,
        "a thing",
        async () => {
          sawHolder = await readFile(marker, "utf8");
        },
        (owner) => `waiting for another build of a thing (pid ${owner})`,
      );
    } finally {
      restore();
    }
    assert.equal(sawHolder, "out", "ran only after the other process had finished");
    assert.deepEqual(lines(), [`waiting for another build of a thing (pid ${holder.pid})\n`]);
    assert.equal(await holder.exited, 0);
    assert.equal(existsSync(path), false, "released");
  });

  it("takes over a lock whose owner is dead, without waiting", async () => {
    const path = join(dir, "b.lock");
    const dead = spawn("true");
    await new Promise((r) => dead.once("exit", r));
    await writeFile(path, String(dead.pid));
    const started = Date.now();
    const { lines, restore } = captureStderr();
    try {
      assert.equal(await withFileLock(path, "b", async () => readFile(path, "utf8")), String(process.pid));
    } finally {
      restore();
    }
    assert.ok(Date.now() - started < 400, "no wait for a dead owner");
    assert.deepEqual(lines(), []);
  });

  it("serialises two holders within one process too, quietly, and releases after a failure", async () => {
    const path = join(dir, "c.lock");
    const order: string[] = [];
    const { lines, restore } = captureStderr();
    try {
      await Promise.all([
        withFileLock(path, "c", async () => {
          order.push("first in");
          await new Promise((r) => setTimeout(r, 600));
          order.push("first out");
          throw new Error("first failed");
        }).catch((e: Error) => order.push(e.message)),
        new Promise((r) => setTimeout(r, 50)).then(() =>
          withFileLock(path, "c", async () => {
            order.push("second in");
          }),
        ),
      ]);
    } finally {
      restore();
    }
    assert.deepEqual(order, ["first in", "first out", "first failed", "second in"]);
    assert.deepEqual(lines(), [], "no line naming its own process as the holder");
  });
});
