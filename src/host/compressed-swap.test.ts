import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { chooseAlgorithm, parseSwaps } from "./compressed-swap.js";

describe("compressed swap", () => {
  it("reads /proc/swaps (sizes in KiB)", () => {
    const text =
      "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n" +
      "/dev/zram0                              partition\t8388604\t\t57344\t\t100\n" +
      "/swapfile                               file\t\t1048572\t\t0\t\t-2\n";
    assert.deepEqual(parseSwaps(text), [
      { name: "/dev/zram0", type: "partition", sizeBytes: 8388604 * 1024, usedBytes: 57344 * 1024 },
      { name: "/swapfile", type: "file", sizeBytes: 1048572 * 1024, usedBytes: 0 },
    ]);
    assert.deepEqual(parseSwaps("Filename\tType\tSize\tUsed\tPriority\n"), []);
  });

  it("chooses lz4 when offered (fastest to decompress on a thaw), else the kernel's default", () => {
    assert.equal(chooseAlgorithm("[lzo-rle] lzo lz4 \n"), "lz4");
    assert.equal(chooseAlgorithm("lzo [lzo-rle] zstd"), "lzo-rle");
    assert.equal(chooseAlgorithm("[deflate] 842"), undefined);
  });
});
