import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encodeXid, isXid, newXid } from "./xid.js";

describe("xid ids", () => {
  it("encodes 12 bytes as rs/xid does (its own test vector)", () => {
    const id = Uint8Array.from([0x4d, 0x88, 0xe1, 0x5b, 0x60, 0xf4, 0x86, 0xe4, 0x28, 0x41, 0x2d, 0xc9]);
    assert.equal(encodeXid(id), "9m4e2mr0ui3e8a215n4g");
    assert.throws(() => encodeXid(new Uint8Array(11)), /12 bytes/);
  });

  it("makes 20-character ids that are DNS labels, sort by time and never repeat", () => {
    const t = Date.UTC(2026, 11, 1);
    const ids = Array.from({ length: 1000 }, () => newXid(t));
    assert.equal(new Set(ids).size, ids.length);
    for (const id of ids) assert.ok(isXid(id) && /^[a-z0-9]{20}$/.test(id), id);
    // The first 4 bytes are the seconds: a later second sorts after.
    assert.ok(newXid(t + 1000) > ids[999]);
    assert.equal(newXid(t).slice(0, 6), ids[0].slice(0, 6));
    assert.ok(!isXid("9m4e2mr0ui3e8a215n4w") && !isXid("short"));
  });
});
