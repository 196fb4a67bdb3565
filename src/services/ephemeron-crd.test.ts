import assert from "node:assert/strict";
import { describe, it } from "node:test";
import YAML from "yaml";
import { ephemeronCrd } from "./ephemeron-crd.js";

describe("ephemeronCrd", () => {
  it("is the reference's resource, cluster-scoped, with a status subresource and printer columns", () => {
    const crd = YAML.parse(ephemeronCrd());
    assert.equal(crd.metadata.name, "ephemerons.qualified.io");
    assert.equal(crd.spec.scope, "Cluster");
    assert.deepEqual(crd.spec.names.shortNames, ["eph", "ephs"]);
    const v = crd.spec.versions[0];
    assert.equal(v.name, "v1alpha1");
    assert.deepEqual(v.subresources, { status: {} });
    assert.deepEqual(
      v.additionalPrinterColumns.map((c: { name: string }) => c.name),
      ["Host", "Available", "Expires", "Created-By"],
    );
    const spec = v.schema.openAPIV3Schema.properties.spec;
    assert.equal(spec.properties.expirationTime.format, "date-time");
    const port = spec.properties.service.properties.port;
    assert.deepEqual([port.minimum, port.maximum], [1, 65535]);
  });
});
