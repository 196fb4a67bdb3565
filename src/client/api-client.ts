import { openAsBlob } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { TempkubeError, type ErrorType } from "../util/errors.js";
import { dataDir } from "../util/paths.js";

/**
 * The REST API's client, shared by the CLI, the bench (and the coming SDK). From the
 * environment: TEMPKUBE_URL, TEMPKUBE_TOKEN, else the local admin token file.
 */
export class ApiClient {
  private constructor(
    readonly baseUrl: string,
    private readonly token: string,
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
    return ApiClient.at(url, token);
  }

  static at(url: string, token: string): ApiClient {
    return new ApiClient(url.replace(/\/$/, ""), token);
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
        body: body?.data,
      });
    } catch (err) {
      throw new TempkubeError(
        "host",
        `cannot reach the tempkube server at ${this.baseUrl} (${(err as Error).message}); start it with: sudo bin/tempkube server`,
      );
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
}

function errorTypeFor(status: number): ErrorType {
  if (status === 404) return "not-found";
  if (status === 409) return "conflict";
  if (status === 401 || status === 403) return "forbidden";
  if (status === 429) return "capacity";
  if (status === 504) return "timeout";
  if (status >= 400 && status < 500) return "invalid-input";
  return "runtime";
}
