import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { chmod, open, readFile } from "node:fs/promises";
import { join } from "node:path";
import { systemClock, type Clock } from "../core/clock.js";
import { TempkubeError } from "../util/errors.js";

/** The HS256 signing secret of /auth tokens: in the data dir, mode 0600, made on the first start. */
export const SERVICE_AUTH_SECRET_FILE = "services-jwt-secret";

/** What an /auth token says: `sub` = `uid.app`, `gid` = `gid.app` or null (src/api/auth/mod.rs Claims). */
export interface ServiceClaims {
  sub: string;
  gid: string | null;
}

/** `POST /auth`'s answer: the token, or the reference's refusal (status and exact message). */
export type AuthAnswer = { status: 200; body: { token: string } } | { status: 400 | 401; body: { message: string } };

/** Lifetime of a token: 5 minutes, as the reference's create_jwt. */
const TOKEN_SECONDS = 5 * 60;
/**
 * Leeway on `exp` when checking: the reference decodes with jsonwebtoken's
 * `Validation::default()`, whose leeway is 60 s; the same, so a token lives as long here.
 */
const LEEWAY_SECONDS = 60;

/**
 * The /auth exchange of qualified/ephemeron (src/api/auth/mod.rs, filter.rs): a backend trades
 * its app's key for a short HS256 JWT on behalf of one of its users, which the browser then
 * uses against the services API. jose signs and checks; the secret is the server's own.
 */
export class ServiceAuth {
  private constructor(
    private readonly secret: Uint8Array,
    private readonly apps: ReadonlyMap<string, string>,
    private readonly clock: Clock,
  ) {}

  /** The secret from `<dataDir>/services-jwt-secret`, made (32 random bytes) when absent. */
  static async open(
    dataDir: string,
    apps: ReadonlyMap<string, string>,
    clock: Clock = systemClock,
  ): Promise<ServiceAuth> {
    return new ServiceAuth(await loadOrCreateSecret(join(dataDir, SERVICE_AUTH_SECRET_FILE)), apps, clock);
  }

  /** For tests: a given secret. */
  static withSecret(secret: Uint8Array, apps: ReadonlyMap<string, string>, clock: Clock = systemClock): ServiceAuth {
    return new ServiceAuth(secret, apps, clock);
  }

  /**
   * `{app, key, uid, gid?}` → `{token}`, in the reference's order of checks and with its
   * answers: unknown app or wrong key 401 "Unauthorized"; a uid or gid that is not 1 to
   * 63 − (len(app)+1) ASCII letters and digits (it becomes a label value `uid.app`) 400
   * "Invalid uid" / "Invalid gid". The body's shape is checked by the route (400 before this).
   */
  async issue(req: { app: string; key: string; uid: string; gid?: string | null }): Promise<AuthAnswer> {
    const expected = this.apps.get(req.app);
    if (expected === undefined || !sameKey(req.key, expected))
      return { status: 401, body: { message: "Unauthorized" } };
    const maxIdLength = 63 - (req.app.length + 1);
    if (!validId(req.uid, maxIdLength)) return { status: 400, body: { message: "Invalid uid" } };
    if (req.gid !== undefined && req.gid !== null && !validId(req.gid, maxIdLength))
      return { status: 400, body: { message: "Invalid gid" } };
    const { SignJWT } = await import("jose");
    const now = Math.floor(this.clock.now() / 1000);
    const token = await new SignJWT({ gid: req.gid != null ? `${req.gid}.${req.app}` : null })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setSubject(`${req.uid}.${req.app}`)
      .setExpirationTime(now + TOKEN_SECONDS)
      .sign(this.secret);
    return { status: 200, body: { token } };
  }

  /** The claims of a token this server signed and that has not expired; undefined for anything else. */
  async verify(token: string): Promise<ServiceClaims | undefined> {
    const { jwtVerify } = await import("jose");
    try {
      const { payload } = await jwtVerify(token, this.secret, {
        algorithms: ["HS256"],
        requiredClaims: ["sub", "exp"],
        clockTolerance: LEEWAY_SECONDS,
        currentDate: new Date(this.clock.now()),
      });
      if (typeof payload.sub !== "string" || !payload.sub.includes(".")) return undefined;
      const gid = typeof payload.gid === "string" ? payload.gid : null;
      return { sub: payload.sub, gid };
    } catch {
      return undefined;
    }
  }
}

/** ASCII letters and digits, 1 to `max` of them (is_valid_id in src/api/auth/mod.rs). */
function validId(s: unknown, max: number): boolean {
  return typeof s === "string" && s.length > 0 && s.length <= max && /^[A-Za-z0-9]+$/.test(s);
}

/** Compares keys in constant time (hashes first, so lengths leak nothing either). */
function sameKey(given: unknown, expected: string): boolean {
  if (typeof given !== "string") return false;
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b);
}

async function loadOrCreateSecret(file: string): Promise<Uint8Array> {
  try {
    const handle = await open(file, "wx", 0o600);
    try {
      await handle.writeFile(`${randomBytes(32).toString("base64url")}\n`);
    } finally {
      await handle.close();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
  // A copy restored with looser permissions would let others mint tokens: tighten it.
  await chmod(file, 0o600);
  const text = (await readFile(file, "utf8")).trim();
  const secret = Buffer.from(text, "base64url");
  if (secret.length < 32)
    throw new TempkubeError(
      "setup",
      `${file} holds no usable signing secret (expected 32 bytes, base64url); remove it and a new one is made (outstanding /auth tokens stop working)`,
    );
  return secret;
}
