import { createHash, randomBytes } from "node:crypto";
import { hostname } from "node:os";

/**
 * Service ids as the reference makes them (qualified/ephemeron src/api/handlers.rs:
 * `xid::new()`): 12 bytes — 4 of seconds since the epoch (big-endian), 3 of the machine, 2 of
 * the process id, 3 of a counter that starts at a random value — written as 20 characters of
 * lower-case base32hex ([0-9a-v]). They sort by creation time, are valid DNS labels (the route
 * is `<id>.<domain>`) and Kubernetes object names, and never repeat within a process.
 */
const ALPHABET = "0123456789abcdefghijklmnopqrstuv";
export const XID_PATTERN = "^[0-9a-v]{20}$";

/** The machine's 3 bytes: the start of a hash of the host name, as rs/xid does when it has no machine id. */
const MACHINE = createHash("md5").update(hostname()).digest().subarray(0, 3);
let counter = randomBytes(3).readUIntBE(0, 3);

export function newXid(nowMs: number = Date.now()): string {
  const id = Buffer.alloc(12);
  id.writeUInt32BE(Math.floor(nowMs / 1000) >>> 0, 0);
  MACHINE.copy(id, 4);
  id.writeUInt16BE(process.pid & 0xffff, 7);
  counter = (counter + 1) & 0xffffff;
  id.writeUIntBE(counter, 9, 3);
  return encodeXid(id);
}

/** 96 bits as 20 base32hex digits, the last one carrying the final bit and four zero bits (rs/xid encode). */
export function encodeXid(id: Uint8Array): string {
  if (id.length !== 12) throw new Error(`an xid is 12 bytes, not ${id.length}`);
  let bits = 0n;
  for (const b of id) bits = (bits << 8n) | BigInt(b);
  bits <<= 4n;
  return [...Array(20)].map((_, i) => ALPHABET[Number((bits >> BigInt((19 - i) * 5)) & 31n)]).join("");
}

export function isXid(text: string): boolean {
  return new RegExp(XID_PATTERN).test(text);
}
