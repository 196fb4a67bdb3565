import { createHash, randomBytes } from "node:crypto";
import { DEFAULT_TENANT_LIMITS, NO_LIMITS, type TokenIdentity, type TokenLimits } from "../core/quota.js";
import { TempkubeError } from "../util/errors.js";
import type { Connection, TokenRow } from "./schema.js";

/** A token as an admin sees it: never its secret. */
export interface TokenInfo extends TokenIdentity {
  createdAt: number;
  revokedAt: number | null;
}

export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** The tokens table: API tokens, stored as hashes, with their limits. */
export class Tokens {
  constructor(private readonly connection: Connection) {}

  private get db() {
    return this.connection.db;
  }

  /** Creates a token; the secret is returned once and only its hash is stored. */
  async create(
    name: string,
    admin: boolean,
    now: number,
    limits: TokenLimits = admin ? NO_LIMITS : DEFAULT_TENANT_LIMITS,
  ): Promise<{ token: string; identity: TokenIdentity }> {
    const token = `tk_${randomBytes(24).toString("base64url")}`;
    const l = admin ? NO_LIMITS : limits;
    const res = await this.db
      .insertInto("tokens")
      .values({
        name,
        hash: hashToken(token),
        admin: admin ? 1 : 0,
        created_at: now,
        max_clusters: l.maxClusters,
        max_ttl_minutes: l.maxTtlMinutes,
        sizes: l.sizes ? JSON.stringify(l.sizes) : null,
        privileged: l.privileged ? 1 : 0,
        max_services: l.maxServices,
        max_service_minutes: l.maxServiceMinutes,
        revoked_at: null,
      })
      .returning("id")
      .executeTakeFirstOrThrow();
    return { token, identity: { id: Number(res.id), name, admin, limits: l } };
  }

  /** The identity behind a secret; revoked tokens have none. */
  async identify(token: string): Promise<TokenIdentity | undefined> {
    const row = await this.db
      .selectFrom("tokens")
      .selectAll()
      .where("hash", "=", hashToken(token))
      .where("revoked_at", "is", null)
      .executeTakeFirst();
    return row ? fromTokenRow(row) : undefined;
  }

  async list(): Promise<TokenInfo[]> {
    return (await this.db.selectFrom("tokens").selectAll().orderBy("id").execute()).map(fromTokenRow);
  }

  async get(id: number): Promise<TokenInfo | undefined> {
    const row = await this.db.selectFrom("tokens").selectAll().where("id", "=", id).executeTakeFirst();
    return row ? fromTokenRow(row) : undefined;
  }

  /** Revokes a token; refused when it is the last admin token left (nobody could manage the server). */
  async revoke(id: number, now: number): Promise<TokenInfo> {
    return this.connection.serialized(async (trx) => {
      const row = await trx.selectFrom("tokens").selectAll().where("id", "=", id).executeTakeFirst();
      if (!row) throw new TempkubeError("not-found", `token ${id} not found`);
      if (row.revoked_at !== null) throw new TempkubeError("conflict", `token ${id} is already revoked`);
      if (Number(row.admin) === 1) {
        const admins = await trx
          .selectFrom("tokens")
          .select((eb) => eb.fn.countAll().as("n"))
          .where("admin", "=", 1)
          .where("revoked_at", "is", null)
          .executeTakeFirstOrThrow();
        if (Number(admins.n) <= 1)
          throw new TempkubeError(
            "conflict",
            `token ${id} is the last admin token; create another admin token before revoking it`,
          );
      }
      await trx.updateTable("tokens").set({ revoked_at: now }).where("id", "=", id).execute();
      return fromTokenRow({ ...row, revoked_at: now });
    });
  }
}

function fromTokenRow(row: Omit<TokenRow, "id"> & { id: number }): TokenInfo {
  const admin = Number(row.admin) === 1;
  return {
    id: Number(row.id),
    name: row.name,
    admin,
    createdAt: Number(row.created_at),
    revokedAt: row.revoked_at === null ? null : Number(row.revoked_at),
    limits: admin
      ? NO_LIMITS
      : {
          maxClusters: row.max_clusters === null ? null : Number(row.max_clusters),
          maxTtlMinutes: row.max_ttl_minutes === null ? null : Number(row.max_ttl_minutes),
          sizes: row.sizes ? (JSON.parse(row.sizes) as string[]) : null,
          privileged: Number(row.privileged) === 1,
          maxServices: row.max_services === null ? null : Number(row.max_services),
          maxServiceMinutes: row.max_service_minutes === null ? null : Number(row.max_service_minutes),
        },
  };
}
