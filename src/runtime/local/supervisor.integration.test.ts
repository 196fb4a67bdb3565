import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { CrashLoopError, CRASH_LOOP_EXITS, failOnCrashLoop, Supervisor } from "./supervisor.js";
import { abortableBy, waitFor } from "./wait.js";

/** Real supervisors (the bash script) around tiny shell commands; no root, no cgroup (it skips what it cannot join). */
describe("supervisor: crash loops end the boot", { timeout: 60_000 }, () => {
  const dirs: string[] = [];
  const supervisors: Supervisor[] = [];

  async function supervisor(): Promise<{ sup: Supervisor; dir: string }> {
    const dir = await mkdtemp(join(tmpdir(), "tk-sup-"));
    dirs.push(dir);
    const sup = new Supervisor(dir, dir);
    supervisors.push(sup);
    return { sup, dir };
  }

  const component = (name: string, script: string) => ({
    name,
    command: "/bin/sh",
    args: ["-c", script],
    cgroup: "/tempkube-unit-test-none",
  });

  after(async () => {
    for (const sup of supervisors) await sup.stopAll(5_000);
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it("names a component that keeps exiting, with its last lines, instead of waiting out the boot", async () => {
    const { sup } = await supervisor();
    const boot = failOnCrashLoop(sup, async () => {
      await sup.start(component("steady", "exec sleep 60"));
      await sup.start(
        component(
          "kubelet-x",
          "echo 'E1201 run.go:72] failed to run Kubelet: inotify_init: too many open files'; exit 1",
        ),
      );
      // Nothing it waits for ever comes: only the crash loop can end this.
      await waitFor("the node to register", async () => false, 60_000, 50);
    });
    await assert.rejects(boot, (err: unknown) => {
      assert.ok(err instanceof CrashLoopError, String(err));
      assert.equal(err.component, "kubelet-x");
      assert.equal(err.exits, CRASH_LOOP_EXITS);
      assert.equal(err.lastCode, 1);
      assert.match(err.message, /^kubelet-x exited 3 times during the boot \(last exit code 1\)/);
      assert.ok(
        err.lastLines.length > 0 && err.lastLines.every((l) => l.includes("inotify_init: too many open files")),
        err.lastLines.join("\n"),
      );
      return true;
    });
    assert.equal(await sup.isRunning("steady"), true, "the boot's failure stops nothing by itself (destroy does)");
  });

  it("lets a component that exits once and then runs finish its boot", async () => {
    const { sup, dir } = await supervisor();
    const marker = join(dir, "tried");
    const result = await failOnCrashLoop(sup, async () => {
      await sup.start(component("early", `if [ -f ${marker} ]; then exec sleep 60; fi; touch ${marker}; exit 1`));
      await waitFor(
        "the second run",
        async () => (await sup.exits("early")).count === 1 && (await sup.pid("early", "child")) !== undefined,
        10_000,
        50,
      );
      return "booted";
    });
    assert.equal(result, "booted");
    assert.deepEqual(await sup.exits("early"), { count: 1, lastCode: 1 });
  });

  it("does not count exits from before the boot, of a supervisor still running", async () => {
    const { sup, dir } = await supervisor();
    const marker = join(dir, "runs");
    // Exits three times, then runs: a boot that finds it running again is not failed by those.
    await sup.start(
      component(
        "flaky",
        `echo x >> ${marker}; [ $(wc -l < ${marker}) -gt ${CRASH_LOOP_EXITS} ] && exec sleep 60; exit 2`,
      ),
    );
    await waitFor("its exits", async () => (await sup.exits("flaky")).count === CRASH_LOOP_EXITS, 20_000, 50);
    const result = await failOnCrashLoop(sup, async () => {
      await new Promise((r) => setTimeout(r, 600));
      return "booted";
    });
    assert.equal(result, "booted");
  });
});

describe("waitFor in an abortable operation", () => {
  it("ends every wait of the operation, however deeply called, with the abort's reason", async () => {
    const aborter = new AbortController();
    const reason = new Error("kubelet crash-loops");
    const nested = async () => {
      await Promise.resolve();
      await waitFor("something that never comes", async () => false, 60_000, 20);
    };
    const operation = abortableBy(aborter.signal, async () => {
      await Promise.all([nested(), waitFor("another", async () => false, 60_000, 20)]);
    });
    setTimeout(() => aborter.abort(reason), 100);
    await assert.rejects(operation, (err: unknown) => err === reason);
  });

  it("leaves waits outside the operation alone", async () => {
    const aborter = new AbortController();
    let polls = 0;
    const outside = waitFor("ten polls", async () => ++polls === 10, 5_000, 20);
    const operation = abortableBy(aborter.signal, () => waitFor("never", async () => false, 5_000, 20));
    aborter.abort(new Error("aborted"));
    await assert.rejects(operation, /aborted/);
    await outside;
    assert.equal(polls, 10);
  });
});
