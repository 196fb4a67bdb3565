import type { Clock } from "../core/clock.js";
import { DEFAULT_TENANT_LIMITS, type TokenIdentity, type TokenLimits } from "../core/quota.js";
import type { Store, TokenInfo } from "../store/store.js";
import { TempkubeError } from "../util/errors.js";

export type CreateTokenRequest = { name: string; admin?: boolean } & Partial<TokenLimits>;

/** The operations on API tokens: admins create, list and revoke them; any token may read its own. */
export class TokenService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  /** The identity behind a bearer secret; none for an unknown or revoked one. */
  identify(secret: string): Promise<TokenIdentity | undefined> {
    return this.store.tokens.identify(secret);
  }

  /** A new token, with the default tenant limits where the request names none; the secret is in this answer only. */
  async create(who: TokenIdentity, req: CreateTokenRequest): Promise<{ info: TokenInfo; secret: string }> {
    requireAdmin(who);
    const { name, admin = false, ...given } = req;
    const limits: TokenLimits = { ...DEFAULT_TENANT_LIMITS, ...given };
    const { token, identity } = await this.store.tokens.create(name, admin, this.clock.now(), limits);
    return { info: (await this.store.tokens.get(identity.id))!, secret: token };
  }

  async list(who: TokenIdentity): Promise<TokenInfo[]> {
    requireAdmin(who);
    return this.store.tokens.list();
  }

  async self(who: TokenIdentity): Promise<TokenInfo> {
    return (await this.store.tokens.get(who.id))!;
  }

  /** Revokes at once; the token's clusters keep their lifetimes. The last admin token cannot go (the store refuses). */
  async revoke(who: TokenIdentity, id: number): Promise<TokenInfo> {
    requireAdmin(who);
    return this.store.tokens.revoke(id, this.clock.now());
  }
}

function requireAdmin(who: TokenIdentity): void {
  if (!who.admin)
    throw new TempkubeError("forbidden", `token "${who.name}" is not an admin token; only admins manage tokens`);
}
