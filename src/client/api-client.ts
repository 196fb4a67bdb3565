import { openAsBlob, readFileSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
// Node's global fetch takes no CA; undici's own fetch takes a dispatcher that does.
import { Agent, fetch, type BodyInit, type Dispatcher, type Response } from "undici";
import { TempkubeError, type ErrorType } from "../util/errors.js";
import { dataDir } from "../util/paths.js";

/** The CLI's global --ca-file, which wins over $TEMPKUBE_CA_FILE. */
let caFileFlag: string | undefined;
export function useCaFile(file: string | undefined): void {
  caFileFlag = file;
}

/** A CA to trust for an https server (a self-signed server certificate is its own CA), and where it came from. */
export interface TrustedCa {
  file: string;
  /** "--ca-file" or "TEMPKUBE_CA_FILE": named in errors. */
  from: string;
}

/**
 * The REST API's client, shared by the CLI, the bench (and the coming SDK). From the
 * environment: TEMPKUBE_URL, TEMPKUBE_TOKEN, else the local admin token file;
 * for an https URL, the CA in --ca-file or TEMPKUBE_CA_FILE (else the system's).
 */
export class ApiClient {
  private constructor(
    readonly baseUrl: string,
    private readonly token: string,
    private readonly ca: TrustedCa | undefined,
    private readonly dispatcher: Dispatcher | undefined,
  ) {}

  static async fromEnvironment(): Promise<ApiClient> {
    const url = process.env.TEMPKUBE_URL ?? "http://127.0.0.1:7780";
    let token = process.env.TEMPKUBE_TOKEN;
    if (!token) {
      const file = join(dataDir(), "admin-token");
      token = (await readFile(file, "utf8").catch(() => "")).trim();
      if (!token)
        throw new TempkubeError("invalid-input", `no token: set TEMPKUBE_TOKEN, or run as a user who can read ${file}`);
    }
    const caFile = caFileFlag ?? (process.env.TEMPKUBE_CA_FILE || undefined);
    return ApiClient.at(
      url,
      token,
      caFile ? { file: caFile, from: caFileFlag ? "--ca-file" : "TEMPKUBE_CA_FILE" } : undefined,
    );
  }

  static at(url: string, token: string, ca?: TrustedCa): ApiClient {
    let dispatcher: Dispatcher | undefined;
    if (ca && url.startsWith("https:")) {
      let pem: string;
      try {
        pem = readFileSync(ca.file, "utf8");
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        throw new TempkubeError("invalid-input", `${ca.from} ${ca.file}: cannot read it (${e.code ?? e.message})`);
      }
      if (!pem.includes("-----BEGIN CERTIFICATE-----"))
        throw new TempkubeError("invalid-input", `${ca.from} ${ca.file} holds no PEM certificate`);
      dispatcher = new Agent({ connect: { ca: pem } });
    }
    return new ApiClient(url.replace(/\/$/, ""), token, ca, dispatcher);
  }

  async request<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
    return this.send<T>(
      method,
      path,
      body === undefined ? undefined : { type: "application/json", data: JSON.stringify(body) },
    );
  }

  /** Sends a file as the raw body, streamed from disk (image archives can be large). */
  async upload<T = Record<string, unknown>>(path: string, file: string): Promise<T> {
    const info = await stat(file).catch(() => undefined);
    if (!info?.isFile()) throw new TempkubeError("invalid-input", `${file} is not a file`);
    const blob = await openAsBlob(file);
    return this.send<T>("POST", path, { type: "application/x-tar", data: blob });
  }

  private async send<T>(method: string, path: string, body?: { type: string; data: string | Blob }): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body ? { "content-type": body.type } : {}) },
        // A file's Blob streams from disk as undici sends it (Node's Blob and undici's typings differ).
        body: body?.data as BodyInit | undefined,
        dispatcher: this.dispatcher,
      });
    } catch (err) {
      throw this.unreachable(err as Error);
    }
    const text = await res.text();
    if (!res.ok) {
      let message = text;
      try {
        message = (JSON.parse(text) as { message: string }).message;
      } catch {
        /* plain text */
      }
      throw new TempkubeError(errorTypeFor(res.status), message);
    }
    return (res.headers.get("content-type")?.includes("json") ? JSON.parse(text) : text) as T;
  }

  /** fetch says "fetch failed"; the cause says why, and a certificate or protocol mismatch says what to do. */
  private unreachable(err: Error): TempkubeError {
    const cause = (err.cause ?? err) as NodeJS.ErrnoException;
    // OpenSSL's own text (ERR_SSL_…) is a multi-line dump; its code says it all.
    const why = cause.code?.startsWith("ERR_SSL_")
      ? cause.code
      : cause.code
        ? `${cause.code}: ${cause.message}`
        : cause.message;
    const at = `the tempkube server at ${this.baseUrl}`;
    if (cause.code && CERTIFICATE_ERRORS.has(cause.code)) {
      const fix = this.ca ? `${this.ca.from} ${this.ca.file} is not the certificate (or CA) of this server; ` : "";
      return new TempkubeError(
        "host",
        `${at} presented a certificate this client does not trust (${why}); ${fix}pass the server's certificate with ` +
          `--ca-file <file> or TEMPKUBE_CA_FILE=<file>: a self-signed one is <server's data dir>/api-tls/server.crt ` +
          `(its path and fingerprint are printed when the server starts)`,
      );
    }
    if (this.baseUrl.startsWith("https:") && /WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|EPROTO/i.test(why))
      return new TempkubeError("host", `${at} does not speak HTTPS (${why}); try an http:// TEMPKUBE_URL`);
    if (this.baseUrl.startsWith("http:") && /other side closed|ECONNRESET|SocketError/i.test(why))
      return new TempkubeError(
        "host",
        `${at} closed the connection (${why}); if it serves HTTPS (a non-loopback --listen does), use an https:// TEMPKUBE_URL`,
      );
    return new TempkubeError("host", `cannot reach ${at} (${why}); start it with: sudo bin/tempkube server`);
  }
}

/** Node's (OpenSSL's) codes for a server certificate that does not verify against the trusted CAs. */
const CERTIFICATE_ERRORS = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_SIGNATURE_FAILURE",
  "CERT_UNTRUSTED",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

function errorTypeFor(status: number): ErrorType {
  if (status === 404) return "not-found";
  if (status === 409) return "conflict";
  if (status === 401 || status === 403) return "forbidden";
  if (status === 429) return "capacity";
  if (status === 504) return "timeout";
  if (status >= 400 && status < 500) return "invalid-input";
  return "runtime";
}
