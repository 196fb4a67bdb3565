import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { validateEphemeron } from "./ephemeron-spec.js";
import { validateService } from "./service-spec.js";

describe("validateService", () => {
  it("refuses what the controller would refuse (it has the last word), naming the field", () => {
    // "1.2.3" passes the API's own quantity pattern but not resource.Quantity's, which the controller checks.
    const service = { image: "x", port: 80, resources: { limits: { cpu: "1.2.3" } } };
    assert.notDeepEqual(
      validateEphemeron({ metadata: { name: "a" }, spec: { expirationTime: new Date(0).toISOString(), service } }),
      [],
    );
    assert.throws(
      () => validateService(service, "body/service"),
      /^Error: body\/service\/resources\/limits\/cpu must be a resource quantity/,
    );
  });
  it("accepts what both accept", () => {
    assert.deepEqual(validateService({ image: "busybox:1.35", port: 8080 }, "presets.web"), {
      image: "busybox:1.35",
      port: 8080,
    });
  });
});
