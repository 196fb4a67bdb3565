import assert from "node:assert/strict";
import { createServer, type AddressInfo } from "node:net";
import { connect } from "node:tls";
import { describe, it } from "node:test";
import { MAX_SNI_BUFFER_BYTES, parseSni } from "./sni.js";

/** The first bytes node's own TLS client sends (a real ClientHello), captured by a plain TCP server. */
async function captureClientHello(servername: string | undefined): Promise<Buffer> {
  const server = createServer();
  const captured = new Promise<Buffer>((resolve) => {
    server.once("connection", (sock) => {
      const chunks: Buffer[] = [];
      sock.on("data", (d: Buffer) => {
        chunks.push(d);
        const all = Buffer.concat(chunks);
        // A record header tells how long the first record is; the ClientHello fits in it.
        if (all.length >= 5 && all.length >= 5 + all.readUInt16BE(3)) {
          resolve(all);
          sock.destroy();
        }
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const client = connect({ host: "127.0.0.1", port: (server.address() as AddressInfo).port, servername });
  client.on("error", () => undefined);
  try {
    return await captured;
  } finally {
    client.destroy();
    server.close();
  }
}

describe("parseSni", () => {
  it("finds the server name of a real ClientHello, whatever the chunk it has got to", async () => {
    const hello = await captureClientHello("abc123.clusters.tempkube.local");
    for (let n = 0; n < hello.length; n++) {
      assert.deepEqual(parseSni(hello.subarray(0, n)), { kind: "need-more" }, `prefix of ${n} bytes`);
    }
    assert.deepEqual(parseSni(hello), { kind: "hostname", hostname: "abc123.clusters.tempkube.local" });
    // Bytes after the ClientHello (none arrive before the server answers, but a client may pipeline) change nothing.
    assert.deepEqual(parseSni(Buffer.concat([hello, Buffer.from("more")])), {
      kind: "hostname",
      hostname: "abc123.clusters.tempkube.local",
    });
  });

  it("reassembles a ClientHello split over several TLS records", async () => {
    const hello = await captureClientHello("two.example");
    const body = hello.subarray(5);
    const record = (b: Buffer) => Buffer.concat([Buffer.from([22, 3, 1, b.length >> 8, b.length & 0xff]), b]);
    for (const cut of [1, 3, 4, 40, body.length - 1]) {
      const split = Buffer.concat([record(body.subarray(0, cut)), record(body.subarray(cut))]);
      assert.deepEqual(parseSni(split.subarray(0, split.length - 1)), { kind: "need-more" }, `cut at ${cut}`);
      assert.deepEqual(parseSni(split), { kind: "hostname", hostname: "two.example" }, `cut at ${cut}`);
    }
  });

  it("says none for a ClientHello without SNI (node sends none for an IP address)", async () => {
    const hello = await captureClientHello(undefined);
    assert.deepEqual(parseSni(hello), { kind: "none" });
    assert.deepEqual(parseSni(hello.subarray(0, hello.length - 1)), { kind: "need-more" });
  });

  it("refuses what is not TLS at the first byte, and a plain HTTP request", () => {
    assert.equal(parseSni(Buffer.from("G")).kind, "not-tls");
    assert.equal(parseSni(Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n")).kind, "not-tls");
    assert.equal(parseSni(Buffer.from([22, 9])).kind, "not-tls", "unknown record version");
    assert.equal(parseSni(Buffer.from([22, 3, 1, 0, 0])).kind, "not-tls", "empty record");
  });

  it("refuses a handshake that is not a ClientHello, and garbage inside a ClientHello", async () => {
    const serverHello = Buffer.from([22, 3, 3, 0, 4, 2, 0, 0, 0]);
    assert.equal(parseSni(serverHello).kind, "not-tls");
    const hello = await captureClientHello("x.example");
    // A complete handshake message whose inner lengths run past its end.
    const broken = Buffer.from(hello);
    broken[5 + 4 + 34] = 0xff; // session id length beyond the message
    assert.equal(parseSni(broken).kind, "not-tls");
    for (let seed = 1; seed < 200; seed++) {
      const noise = Buffer.from(hello);
      for (let i = 9 + 34; i < noise.length; i += 1 + ((i * seed) % 13)) noise[i] = (noise[i] * 31 + seed) & 0xff;
      const r = parseSni(noise); // never throws, whatever the bytes
      assert.ok(["hostname", "none", "not-tls"].includes(r.kind), `seed ${seed}: ${r.kind}`);
    }
  });

  it("refuses a ClientHello larger than the cap instead of buffering it", () => {
    const header = Buffer.from([22, 3, 1, 0x40, 0x00, 1, 0x01, 0x00, 0x00]); // handshake length 64 KiB
    assert.deepEqual(parseSni(header), { kind: "not-tls", reason: "ClientHello too large" });
    assert.equal(parseSni(Buffer.alloc(MAX_SNI_BUFFER_BYTES + 1, 22)).kind, "not-tls");
  });
});
