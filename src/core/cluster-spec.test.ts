import assert from "node:assert/strict";
import { it } from "node:test";
import { isValidClusterId, newClusterId, validateSpec, type ClusterSpec } from "./cluster-spec.js";

const good: ClusterSpec = { id: "abc123", kubernetesVersion: "1.34", privileged: false, size: "1-mid", workers: 0 };

it("accepts a valid spec", () => {
  assert.deepEqual(validateSpec(good), []);
});

it("names the field and the rule of each problem", () => {
  const problems = validateSpec({ ...good, id: "Bad_ID", size: "huge" as ClusterSpec["size"], workers: 9 });
  assert.equal(problems.length, 3);
  assert.match(problems[0], /^id "Bad_ID" must be/);
  assert.match(problems[1], /^size "huge" is not one of 1-small, 1-mid, 1-large/);
  assert.match(problems[2], /^workers must be an integer from 0 to 4/);
});

it("generates ids that are valid DNS labels", () => {
  let seed = 0;
  const rnd = () => (seed = (seed * 9301 + 49297) % 233280) / 233280;
  for (let i = 0; i < 100; i++) assert.ok(isValidClusterId(newClusterId(rnd)));
});

it('refuses the reserved id "services" (the services domain) and never draws it', () => {
  assert.match(validateSpec({ ...good, id: "services" }).join(), /^id "services" is reserved/);
  // A random source that spells "services" first, then something else.
  const letters = "abcdefghijklmnopqrstuvwxyz";
  const alnum = `${letters}0123456789`;
  const draws = [letters.indexOf("s") / 26, ..."ervices".split("").map((c) => alnum.indexOf(c) / 36)];
  let i = 0;
  const rnd = () => (i < draws.length ? draws[i++] + 1e-9 : 0);
  assert.equal(newClusterId(rnd), "aaaaaaaa");
});
