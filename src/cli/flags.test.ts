import assert from "node:assert/strict";
import { it } from "node:test";
import { parseTtl } from "./flags.js";

it("reads TTLs as minutes or hours", () => {
  assert.equal(parseTtl("30m"), 30);
  assert.equal(parseTtl("2h"), 120);
  assert.equal(parseTtl("45"), 45);
  assert.throws(() => parseTtl("soon"), /--ttl must look like 30m or 2h, not "soon"/);
  assert.equal(parseTtl("0", "--idle"), 0);
  assert.throws(() => parseTtl("-5m", "--idle"), /--idle must look like 30m or 2h, not "-5m"/);
});
