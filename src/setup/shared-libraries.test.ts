import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseLdd } from "./shared-libraries.js";

describe("shared libraries for the image", () => {
  it("reads library paths from ldd output, skipping the vDSO and unresolved names", () => {
    const output = [
      "\tlinux-vdso.so.1 (0x00007ffd2b1f5000)",
      "\tlibm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x00007f6590b58000)",
      "\tlibresolv.so.2 => /lib/x86_64-linux-gnu/libresolv.so.2 (0x00007f6590b47000)",
      "\tlibmissing.so.1 => not found",
      "\t/lib64/ld-linux-x86-64.so.2 (0x00007f6590d48000)",
    ].join("\n");
    assert.deepEqual(parseLdd(output), [
      "/lib/x86_64-linux-gnu/libm.so.6",
      "/lib/x86_64-linux-gnu/libresolv.so.2",
      "/lib64/ld-linux-x86-64.so.2",
    ]);
    assert.deepEqual(parseLdd("\tstatically linked\n"), []);
  });
});
