import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FakeEphemeronApi } from "../testing/fake-ephemeron-api.js";
import { onFirstUse } from "./ephemeron-api.js";

describe("onFirstUse", () => {
  it("makes the API once for requests that come together, keeps it, and tries again after a failure", async () => {
    let made = 0;
    let fail = true;
    const getApi = onFirstUse(async () => {
      made++;
      await new Promise((r) => setTimeout(r, 10));
      if (fail) throw new Error("services cluster failed to boot");
      return new FakeEphemeronApi();
    });
    const first = await Promise.allSettled([getApi(), getApi()]);
    assert.deepEqual(
      first.map((r) => r.status),
      ["rejected", "rejected"],
    );
    assert.equal(made, 1, "one attempt for both");
    fail = false;
    const [a, b] = await Promise.all([getApi(), getApi()]);
    assert.equal(a, b);
    assert.equal(await getApi(), a);
    assert.equal(made, 2, "tried again once, then kept");
  });
});
