import { createReadStream, readFileSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import * as http from "node:http";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
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

/** An ephemeral service as /v1/services shows it (src/server/schemas.ts serviceSchema). */
export interface ServiceView {
  id: string;
  host: string | null;
  url: string | null;
  expirationTime: string;
  tls: boolean;
  phase: "pending" | "starting" | "available" | "failed" | "deleting";
  conditions: { type: string; status: string; lastTransitionTime: string; reason?: string; message?: string }[];
  image: string;
  port: number;
  createdBy: string | null;
  createdAt: string | null;
  notificationEmail: string | null;
}

export interface CreateServiceBody {
  preset?: string;
  service?: { image: string; port: number } & Record<string, unknown>;
  lifetimeMinutes: number;
  notificationEmail?: string;
  wait?: boolean;
}

/** What a request sends: JSON text, or a file streamed from disk. */
type Body = { type: string; data: string } | { type: string; file: string; size: number };

/**
 * The REST API's client, shared by the CLI, the bench (and the coming SDK). From the
 * environment: TEMPKUBE_URL, TEMPKUBE_TOKEN, else the local admin token file;
 * for an https URL, the CA in --ca-file or TEMPKUBE_CA_FILE (else the system's).
 *
 * It speaks through node:http and node:https, not fetch: Node loads fetch's implementation
 * (undici) on the first call, ~100 ms of a CLI command that should take ~100 ms in all
 * (issue 15); https takes the CA as an option of its own.
 */
export class ApiClient {
  private constructor(
    readonly baseUrl: string,
    private readonly token: string,
    private readonly ca: TrustedCa | undefined,
    /** The CA's PEM when one is trusted for an https URL; else the system's CAs. */
    private readonly caPem: string | undefined,
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
    let caPem: string | undefined;
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
      caPem = pem;
    }
    return new ApiClient(url.replace(/\/$/, ""), token, ca, caPem);
  }

  async request<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
    return this.send<T>(
      method,
      path,
      body === undefined ? undefined : { type: "application/json", data: JSON.stringify(body) },
    );
  }

  /** POST /v1/services: from a preset or a spec; with `wait`, answered once it serves (or fails, or the server stops waiting). */
  createService(body: CreateServiceBody): Promise<ServiceView> {
    return this.request<ServiceView>("POST", "/v1/services", body);
  }

  async listServices(): Promise<ServiceView[]> {
    return (await this.request<{ items: ServiceView[] }>("GET", "/v1/services")).items;
  }

  getService(id: string): Promise<ServiceView> {
    return this.request<ServiceView>("GET", `/v1/services/${encodeURIComponent(id)}`);
  }

  /** A new expiry, `lifetimeMinutes` from now. */
  extendService(id: string, lifetimeMinutes: number): Promise<ServiceView> {
    return this.request<ServiceView>("PATCH", `/v1/services/${encodeURIComponent(id)}`, { lifetimeMinutes });
  }

  async deleteService(id: string): Promise<void> {
    await this.request("DELETE", `/v1/services/${encodeURIComponent(id)}`);
  }

  /** Sends a file as the raw body, streamed from disk (image archives can be large). */
  async upload<T = Record<string, unknown>>(path: string, file: string): Promise<T> {
    const info = await stat(file).catch(() => undefined);
    if (!info?.isFile()) throw new TempkubeError("invalid-input", `${file} is not a file`);
    return this.send<T>("POST", path, { type: "application/x-tar", file, size: info.size });
  }

  private async send<T>(method: string, path: string, body?: Body): Promise<T> {
    let status: number;
    let contentType: string | undefined;
    let text: string;
    try {
      ({ status, contentType, text } = await this.exchange(method, new URL(`${this.baseUrl}${path}`), body));
    } catch (err) {
      throw this.unreachable(err as Error);
    }
    if (status < 200 || status > 299) throw this.refusal(status, text);
    return (contentType?.includes("json") ? JSON.parse(text) : text) as T;
  }

  /**
   * A request whose answer is NDJSON (`?follow=true`): `onItem` gets each line as it comes, so
   * one request shows a whole operation. A refusal (non-2xx) throws as `request` does.
   */
  async stream<T>(method: string, path: string, body: unknown, onItem: (item: T) => void): Promise<void> {
    const data = body === undefined ? undefined : { type: "application/json", data: JSON.stringify(body) };
    let res: http.IncomingMessage;
    try {
      res = await this.open(method, new URL(`${this.baseUrl}${path}`), data);
    } catch (err) {
      throw this.unreachable(err as Error);
    }
    const status = res.statusCode ?? 0;
    if (status < 200 || status > 299 || !res.headers["content-type"]?.includes("ndjson")) {
      const text = await readAll(res);
      if (status >= 200 && status <= 299) return onItem(JSON.parse(text) as T);
      throw this.refusal(status, text);
    }
    let pending = "";
    try {
      for await (const chunk of res) {
        pending += (chunk as Buffer).toString("utf8");
        let end: number;
        while ((end = pending.indexOf("\n")) >= 0) {
          const line = pending.slice(0, end).trim();
          pending = pending.slice(end + 1);
          if (line) onItem(JSON.parse(line) as T);
        }
      }
    } catch (err) {
      if (err instanceof SyntaxError || err instanceof TempkubeError) throw err;
      throw this.unreachable(err as Error);
    }
    if (pending.trim()) onItem(JSON.parse(pending) as T);
  }

  private refusal(status: number, text: string): TempkubeError {
    let message = text;
    let type = errorTypeFor(status);
    try {
      const body = JSON.parse(text) as { message: string; error?: string };
      message = body.message;
      // A 409 is a conflict or a version to install first: scripts tell them apart by exit code.
      if (status === 409 && body.error === "not-installed") type = "not-installed";
    } catch {
      /* plain text */
    }
    return new TempkubeError(type, message);
  }

  /** One request and its whole answer; a failure to connect, or mid-answer, rejects with the socket's error. */
  private async exchange(
    method: string,
    url: URL,
    body: Body | undefined,
  ): Promise<{ status: number; contentType?: string; text: string }> {
    const res = await this.open(method, url, body);
    return { status: res.statusCode ?? 0, contentType: res.headers["content-type"], text: await readAll(res) };
  }

  /** Sends the request; resolves with the response as soon as its head arrives. */
  private async open(method: string, url: URL, body: Body | undefined): Promise<http.IncomingMessage> {
    const headers: http.OutgoingHttpHeaders = { authorization: `Bearer ${this.token}` };
    if (body) {
      headers["content-type"] = body.type;
      headers["content-length"] = "data" in body ? Buffer.byteLength(body.data) : body.size;
    }
    // node:https (and with it TLS) only for an https URL.
    const req =
      url.protocol === "https:"
        ? (await import("node:https")).request(url, { method, headers, ...(this.caPem ? { ca: this.caPem } : {}) })
        : http.request(url, { method, headers });
    const answered = new Promise<http.IncomingMessage>((resolve, reject) => {
      req.once("response", resolve);
      req.on("error", reject);
    });
    if (!body) req.end();
    else if ("data" in body) req.end(body.data);
    // A failed upload destroys the request, which rejects `answered`; a server that answers
    // before it has read the whole file (a refusal) is heard all the same.
    else pipeline(createReadStream(body.file), req).catch(() => undefined);
    return answered;
  }

  /** The socket's error (or fetch-style, its cause) says why; and a certificate or protocol mismatch says what to do. */
  private unreachable(err: Error): TempkubeError {
    const cause = (err.cause ?? err) as NodeJS.ErrnoException;
    // A TLS record error met while writing comes as EPROTO with OpenSSL's dump in the message
    // ("…:SSL routines:ssl3_get_record:wrong version number:…"): named the way Node names
    // OpenSSL's reasons elsewhere (ERR_SSL_WRONG_VERSION_NUMBER).
    const reason = cause.code === "EPROTO" ? /SSL routines:[^:]*:([^:]+):/.exec(cause.message)?.[1] : undefined;
    const code = reason ? `ERR_SSL_${reason.toUpperCase().replace(/\W+/g, "_")}` : cause.code;
    // OpenSSL's own text (ERR_SSL_…) is a multi-line dump; its code says it all.
    const why = code?.startsWith("ERR_SSL_") ? code : code ? `${code}: ${cause.message}` : cause.message;
    const at = `the tempkube server at ${this.baseUrl}`;
    if (code && CERTIFICATE_ERRORS.has(code)) {
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
    if (this.baseUrl.startsWith("http:") && /other side closed|ECONNRESET|socket hang up|HPE_|SocketError/i.test(why))
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

async function readAll(res: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function errorTypeFor(status: number): ErrorType {
  if (status === 404) return "not-found";
  if (status === 409) return "conflict";
  if (status === 401 || status === 403) return "forbidden";
  if (status === 429) return "capacity";
  if (status === 504) return "timeout";
  // 503: a part the server needs is not there now (the services cluster): a host problem, worth retrying.
  if (status === 503) return "host";
  if (status >= 400 && status < 500) return "invalid-input";
  return "runtime";
}
