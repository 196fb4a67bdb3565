import assert from "node:assert/strict";
import { it } from "node:test";
import { median, percentile } from "./stats.js";

it("takes nearest-rank percentiles", () => {
  assert.equal(median([5, 1, 3]), 3);
  assert.equal(median([4, 1, 3, 2]), 2);
  assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90), 9);
  assert.equal(percentile([7], 90), 7);
  assert.ok(Number.isNaN(median([])));
});
