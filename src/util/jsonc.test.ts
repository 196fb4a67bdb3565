import assert from "node:assert/strict";
import { it } from "node:test";
import { parseJsonWithComments } from "./jsonc.js";

it("accepts comments and trailing commas, keeps // inside strings", () => {
  const body = `{
    "k8s-version": "1.34", // the version
    /* block */ "notification-email": "dev@example.com",
    "url": "http://example.com/a//b",
  }`;
  assert.deepEqual(parseJsonWithComments(body), {
    "k8s-version": "1.34",
    "notification-email": "dev@example.com",
    url: "http://example.com/a//b",
  });
  assert.deepEqual(parseJsonWithComments(""), {});
  assert.throws(() => parseJsonWithComments("{nope"), /not valid JSON/);
});
