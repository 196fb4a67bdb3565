import assert from "node:assert/strict";
import { it } from "node:test";
import { parseLabelPairs } from "./labels.js";

const refuse = (pair: string) => new Error(`bad pair "${pair}"`);

it("parses key=value pairs; a value may be empty or hold '='", () => {
  assert.deepEqual(parseLabelPairs(["team=a", "env=", "q=x=y"], refuse), { team: "a", env: "", q: "x=y" });
  assert.deepEqual(parseLabelPairs([], refuse), {});
});

it("refuses a pair without a key, with the caller's error", () => {
  assert.throws(() => parseLabelPairs(["team=a", "=b"], refuse), /bad pair "=b"/);
  assert.throws(() => parseLabelPairs(["team"], refuse), /bad pair "team"/);
});
