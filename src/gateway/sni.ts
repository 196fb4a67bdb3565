/**
 * Reads the SNI server_name from the first bytes a TLS client sends, without terminating TLS:
 * the gateway passes the whole stream on untouched, so client certificates keep working.
 *
 * The ClientHello may arrive in several TCP chunks and, in principle, span several TLS records
 * (RFC 8446 §5.1: handshake messages may be fragmented across records), so the caller buffers
 * and asks again until the answer is not "need-more". Wire format: RFC 8446 §4.1.2 (ClientHello),
 * RFC 6066 §3 (server_name extension).
 */
export type SniResult =
  | { kind: "need-more" }
  | { kind: "hostname"; hostname: string }
  /** A complete ClientHello without a host_name in server_name. */
  | { kind: "none" }
  /** Not a TLS ClientHello, malformed, or larger than the cap. */
  | { kind: "not-tls"; reason: string };

/** A ClientHello larger than this is refused (2^14 is TLS's largest record; real ones are < 2 KiB, with post-quantum key shares < 4 KiB). */
export const MAX_CLIENT_HELLO_BYTES = 16 * 1024;
/** What the caller may buffer at most: the ClientHello plus room for record headers. */
export const MAX_SNI_BUFFER_BYTES = MAX_CLIENT_HELLO_BYTES + 4 + 5 * 8;

const RECORD_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const EXT_SERVER_NAME = 0;
const NAME_TYPE_HOST_NAME = 0;

const notTls = (reason: string): SniResult => ({ kind: "not-tls", reason });

export function parseSni(buf: Buffer): SniResult {
  if (buf.length > MAX_SNI_BUFFER_BYTES) return notTls("ClientHello too large");
  // Reassemble the handshake message from as many records as it takes.
  const parts: Buffer[] = [];
  let have = 0;
  let offset = 0;
  for (;;) {
    if (have >= 4) {
      if (parts[0][0] !== HANDSHAKE_CLIENT_HELLO) return notTls("first handshake message is not a ClientHello");
      const msgLen = Buffer.concat(parts).readUIntBE(1, 3);
      if (msgLen > MAX_CLIENT_HELLO_BYTES) return notTls("ClientHello too large");
      if (have >= 4 + msgLen) return parseClientHello(Buffer.concat(parts).subarray(4, 4 + msgLen));
    }
    if (buf.length < offset + 1) return { kind: "need-more" };
    if (buf[offset] !== RECORD_HANDSHAKE)
      return notTls(offset === 0 ? "not a TLS handshake record" : "record is not a handshake");
    if (buf.length >= offset + 2 && buf[offset + 1] !== 3) return notTls("unknown record version");
    if (buf.length < offset + 5) return { kind: "need-more" };
    const recLen = buf.readUInt16BE(offset + 3);
    if (recLen === 0 || recLen > MAX_CLIENT_HELLO_BYTES) return notTls("bad record length");
    if (buf.length < offset + 5 + recLen) {
      // Judge the handshake header as soon as it is in: a ClientHello too large is refused before it is buffered.
      const sofar = Buffer.concat([...parts, buf.subarray(offset + 5)]);
      if (sofar.length >= 1 && sofar[0] !== HANDSHAKE_CLIENT_HELLO)
        return notTls("first handshake message is not a ClientHello");
      if (sofar.length >= 4 && sofar.readUIntBE(1, 3) > MAX_CLIENT_HELLO_BYTES) return notTls("ClientHello too large");
      return { kind: "need-more" };
    }
    const payload = buf.subarray(offset + 5, offset + 5 + recLen);
    parts.push(payload);
    have += payload.length;
    offset += 5 + recLen;
  }
}

/** body: the ClientHello after its 4-byte handshake header. */
function parseClientHello(body: Buffer): SniResult {
  let p = 2 + 32; // legacy_version, random
  const need = (n: number) => p + n <= body.length;
  if (!need(1)) return notTls("truncated ClientHello");
  p += 1 + body[p]; // legacy_session_id
  if (!need(2)) return notTls("truncated ClientHello");
  p += 2 + body.readUInt16BE(p); // cipher_suites
  if (!need(1)) return notTls("truncated ClientHello");
  p += 1 + body[p]; // legacy_compression_methods
  if (p === body.length) return { kind: "none" }; // no extensions at all (TLS 1.0-style hello)
  if (!need(2)) return notTls("truncated ClientHello");
  const extEnd = p + 2 + body.readUInt16BE(p);
  p += 2;
  if (extEnd > body.length) return notTls("truncated extensions");
  while (p + 4 <= extEnd) {
    const type = body.readUInt16BE(p);
    const len = body.readUInt16BE(p + 2);
    p += 4;
    if (p + len > extEnd) return notTls("truncated extension");
    if (type === EXT_SERVER_NAME) return parseServerName(body.subarray(p, p + len));
    p += len;
  }
  return { kind: "none" };
}

function parseServerName(ext: Buffer): SniResult {
  if (ext.length < 2) return notTls("truncated server_name");
  const end = Math.min(ext.length, 2 + ext.readUInt16BE(0));
  let p = 2;
  while (p + 3 <= end) {
    const nameType = ext[p];
    const len = ext.readUInt16BE(p + 1);
    p += 3;
    if (p + len > end) return notTls("truncated server_name");
    // RFC 6066: host_name is ASCII, "without a trailing dot"; anything else will not match a route.
    if (nameType === NAME_TYPE_HOST_NAME) return { kind: "hostname", hostname: ext.toString("latin1", p, p + len) };
    p += len;
  }
  return { kind: "none" };
}
