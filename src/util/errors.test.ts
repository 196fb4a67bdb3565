import assert from "node:assert/strict";
import { it } from "node:test";
import { ChildProcessError, redactSecrets } from "./errors.js";

it("redacts private keys, tokens and URL passwords", () => {
  const text =
    "token=abc123 url=smtp://user:hunter2@host:587 -----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY----- Bearer xyz.abc";
  const out = redactSecrets(text);
  for (const secret of ["abc123", "hunter2", "MIIE", "xyz.abc"]) assert.ok(!out.includes(secret), secret);
});

it("child-process errors carry the command, the exit code, the log path and the last lines", () => {
  const err = new ChildProcessError({
    command: "go build",
    exitCode: 2,
    lastLines: ["undefined: foo"],
    logFile: "/tmp/x.log",
  });
  assert.equal(err.type, "child-process");
  assert.match(err.message, /go build exited with code 2/);
  assert.match(err.message, /full log: \/tmp\/x\.log/);
  assert.match(err.message, /undefined: foo/);
});
