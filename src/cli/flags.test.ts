import assert from "node:assert/strict";
import { it } from "node:test";
import { parseDurationMs, parseTtl } from "./flags.js";

it("reads TTLs as minutes or hours", () => {
  assert.equal(parseTtl("30m"), 30);
  assert.equal(parseTtl("2h"), 120);
  assert.equal(parseTtl("45"), 45);
  assert.throws(() => parseTtl("soon"), /--ttl must look like 30m or 2h, not "soon"/);
  assert.equal(parseTtl("0", "--idle"), 0);
  assert.throws(() => parseTtl("-5m", "--idle"), /--idle must look like 30m or 2h, not "-5m"/);
});

it("reads durations as seconds, minutes or hours (a bare number is seconds), and names the flag when refused", () => {
  assert.equal(parseDurationMs("90s", "--freeze-after"), 90_000);
  assert.equal(parseDurationMs("2m", "--freeze-after"), 120_000);
  assert.equal(parseDurationMs("1h", "--freeze-after"), 3_600_000);
  assert.equal(parseDurationMs("45", "--freeze-after"), 45_000);
  assert.equal(parseDurationMs("0", "--freeze-after"), 0);
  assert.throws(
    () => parseDurationMs("-1s", "--freeze-after"),
    /--freeze-after must look like 90s, 2m or 0, not "-1s"/,
  );
  assert.throws(() => parseDurationMs("soon", "--freeze-after"), /--freeze-after/);
});
