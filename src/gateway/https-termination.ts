import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import type { Server as HttpServer } from "node:http";
import type { Socket } from "node:net";
import { isAbsolute, normalize } from "node:path";
import { createSecureContext, createServer, type SecureContext, type Server as TlsServer } from "node:tls";
import type { GatewayCa } from "./gateway-ca.js";
import type { GatewayContext } from "./gateway-context.js";
import type { HttpRoute } from "./gateway-files.js";
import { readHttpRoute } from "./route-reader.js";

/** A client that has not finished its handshake within this long is dropped. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** Certificate files kept parsed, one entry per route's pair: bounded like the CA's leaves. */
const MAX_CACHED_FILES = 4096;

interface GivenEntry {
  /** inode, size and mtime of both files when they were read: a change is read again. */
  signature: string;
  cert: X509Certificate;
  context: SecureContext;
}

/**
 * HTTPS for fixed routes (ephemeral services, issue 14) on the gateway's TLS port. The TLS
 * gateway reads the ClientHello's SNI; a name that is no cluster's apiserver but has an
 * HttpRoute with `tls` is handed here: TLS is terminated with the route's certificate (its own
 * files, or one the gateway CA issues for the name) and the decrypted connection is served by
 * the HTTP gateway itself, so routing, waking and activity are the HTTP port's.
 *
 * Which certificate a handshake gets is decided from the name OpenSSL parsed (SNICallback), with
 * the route read again: a name without a route with `tls` gets none, whatever the gateway's own
 * ClientHello parser made of the bytes.
 */
export class HttpsTermination {
  private readonly tls: TlsServer;
  private readonly given = new Map<string, GivenEntry>();
  /** The last problem logged per host name, so a broken route is logged once, not at every handshake. */
  private readonly warned = new Map<string, string>();

  constructor(
    private readonly ctx: GatewayContext,
    private readonly ca: GatewayCa | undefined,
    http: HttpServer,
  ) {
    this.tls = createServer({
      SNICallback: (servername, cb) => {
        this.contextFor(servername).then(
          (context) => cb(null, context),
          (err: Error) => cb(err),
        );
      },
      // The HTTP gateway speaks HTTP/1.1; a client offering h2 as well settles on it.
      ALPNProtocols: ["http/1.1"],
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
    });
    this.tls.on("secureConnection", (socket) => http.emit("connection", socket));
    // A handshake that fails (no certificate for the name, a malformed or hostile hello, a client
    // that gives up) costs that connection only; the TLS server has destroyed it already.
    this.tls.on("tlsClientError", (err: NodeJS.ErrnoException, socket) => {
      ctx.metrics.refuse("tls_handshake");
      ctx.log.debug({ err, remote: socket.remoteAddress }, "HTTPS handshake failed");
      socket.destroy();
    });
  }

  /** Whether a connection for this SNI is terminated here: a fixed route for exactly this name, with `tls`. */
  async terminates(sni: string): Promise<boolean> {
    const route = await readHttpRoute(this.ctx.paths, sni.toLowerCase());
    return Boolean(route?.tls);
  }

  /**
   * Serves a client whose ClientHello has been read (and not answered): the bytes read so far are
   * put back, and the TLS server takes the socket as if it had accepted it (Node's TLSSocket
   * feeds a wrapped socket's buffered data to the handshake first).
   */
  serve(client: Socket, buffered: Buffer): void {
    client.unshift(buffered);
    this.tls.emit("connection", client);
  }

  /** The TLS context of a host name's route, or an error saying why it has none. */
  async contextFor(sni: string): Promise<SecureContext> {
    const hostname = sni.toLowerCase();
    const route = await readHttpRoute(this.ctx.paths, hostname);
    if (!route?.tls) throw new Error(`no HTTPS route for ${JSON.stringify(sni)}`);
    try {
      const context = route.tls === "gateway" ? await this.gatewayContext(hostname) : await this.givenContext(route);
      this.warned.delete(hostname);
      return context;
    } catch (err) {
      const message = (err as Error).message;
      if (this.warned.get(hostname) !== message) {
        this.warned.set(hostname, message);
        if (this.warned.size > MAX_CACHED_FILES) this.warned.delete(this.warned.keys().next().value as string);
        this.ctx.log.warn({ host: hostname, owner: route.owner }, `HTTPS route cannot be served: ${message}`);
      }
      throw err;
    }
  }

  private gatewayContext(hostname: string): Promise<SecureContext> {
    if (!this.ca) throw new Error("the gateway has no CA (see the log of its start)");
    return this.ca.contextFor(hostname);
  }

  /**
   * The route's own PEM files, kept parsed while neither changes (routes and their certificates
   * are replaced while the gateway runs). Paths must be absolute and plain (no `.` or `..`
   * segments); the certificate must belong to the key and name the route's host, so a route
   * never serves a certificate for a name it is not.
   */
  private async givenContext(route: HttpRoute): Promise<SecureContext> {
    const tls = route.tls as { certFile?: unknown; keyFile?: unknown };
    const file = (field: "certFile" | "keyFile"): string => {
      const f = tls[field];
      if (typeof f !== "string" || !isAbsolute(f) || normalize(f) !== f || f.includes("\0"))
        throw new Error(`tls.${field} must be an absolute path without . or .. segments, not ${JSON.stringify(f)}`);
      return f;
    };
    const certFile = file("certFile");
    const keyFile = file("keyFile");
    const signature = async () => {
      const [c, k] = await Promise.all([stat(certFile), stat(keyFile)]).catch((err: NodeJS.ErrnoException) => {
        throw new Error(`cannot read ${err.path ?? certFile}: ${err.code ?? err.message}`);
      });
      if (!c.isFile() || !k.isFile()) throw new Error(`${!c.isFile() ? certFile : keyFile} is not a regular file`);
      return `${c.dev}:${c.ino}:${c.size}:${c.mtimeMs}/${k.dev}:${k.ino}:${k.size}:${k.mtimeMs}`;
    };
    const cacheKey = `${certFile}\0${keyFile}`;
    const before = await signature();
    let entry = this.given.get(cacheKey);
    if (!entry || entry.signature !== before) {
      const [certPem, keyPem] = await Promise.all([readFile(certFile, "utf8"), readFile(keyFile, "utf8")]).catch(
        (err: NodeJS.ErrnoException) => {
          throw new Error(`cannot read ${err.path ?? certFile}: ${err.code ?? err.message}`);
        },
      );
      let cert: X509Certificate;
      try {
        cert = new X509Certificate(certPem);
      } catch {
        throw new Error(`${certFile} is not a PEM certificate`);
      }
      let matches: boolean;
      try {
        matches = cert.checkPrivateKey(createPrivateKey(keyPem));
      } catch {
        throw new Error(`${keyFile} is not a PEM private key`);
      }
      if (!matches) throw new Error(`${keyFile} is not the key of ${certFile}`);
      entry = { signature: before, cert, context: createSecureContext({ cert: certPem, key: keyPem }) };
      // Kept only when nothing changed while it was read: else a half-replaced pair would stick.
      if ((await signature()) === before) {
        this.given.delete(cacheKey);
        this.given.set(cacheKey, entry);
        if (this.given.size > MAX_CACHED_FILES) this.given.delete(this.given.keys().next().value as string);
      }
    }
    if (!entry.cert.checkHost(route.hostname))
      throw new Error(
        `${certFile} is not a certificate for ${route.hostname} (${entry.cert.subjectAltName ?? entry.cert.subject})`,
      );
    return entry.context;
  }
}
