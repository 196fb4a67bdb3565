import type { FastifyInstance, FastifyRequest } from "fastify";
import type { TokenLimits } from "../core/quota.js";
import { DEFAULT_TENANT_LIMITS, type Store, type TokenInfo } from "../store/store.js";
import { TempkubeError } from "../util/errors.js";
import type { RouteSchema } from "./app.js";
import { createTokenBody, tokenIdParams, tokenView as tokenSchema } from "./schemas.js";

/** Tokens: admins create, list and revoke them; anyone can see their own limits. */

type CreateTokenBody = { name: string; admin?: boolean } & Partial<TokenLimits>;

export function tokenView(t: TokenInfo, secret?: string) {
  return {
    id: t.id, name: t.name, admin: t.admin, limits: t.limits, createdAt: new Date(t.createdAt).toISOString(),
    revokedAt: t.revokedAt === null ? null : new Date(t.revokedAt).toISOString(), ...(secret ? { token: secret } : {}),
  };
}

function requireAdmin(req: FastifyRequest): void {
  if (!req.identity?.admin) throw new TempkubeError("forbidden", `token "${req.identity?.name}" is not an admin token; only admins manage tokens`);
}

export function registerTokenRoutes(app: FastifyInstance, store: Store, route: RouteSchema): void {
  const tags = ["tokens"];

  app.post<{ Body: CreateTokenBody }>("/v1/tokens", route("Create an API token (admin); the secret is in this answer only",
    { body: createTokenBody }, tokenSchema, 201, tags), async (req, reply) => {
    requireAdmin(req);
    const { name, admin = false, ...given } = req.body;
    const limits: TokenLimits = { ...DEFAULT_TENANT_LIMITS, ...given };
    const { token, identity } = await store.createToken(name, admin, Date.now(), limits);
    const info = (await store.getToken(identity.id))!;
    return reply.status(201).send(tokenView(info, token));
  });

  app.get("/v1/tokens", route("List API tokens (admin); never their secrets", {},
    { type: "object", properties: { items: { type: "array", items: tokenSchema } } }, 200, tags), async (req) => {
    requireAdmin(req);
    return { items: (await store.listTokens()).map((t) => tokenView(t)) };
  });

  app.get("/v1/tokens/self", route("The calling token: its name and limits", {}, tokenSchema, 200, tags), async (req) =>
    tokenView((await store.getToken(req.identity!.id))!));

  app.delete<{ Params: { id: number } }>("/v1/tokens/:id", route("Revoke an API token (admin); its clusters keep their lifetimes",
    { params: tokenIdParams }, tokenSchema, 200, tags), async (req) => {
    requireAdmin(req);
    return tokenView(await store.revokeToken(req.params.id, Date.now()));
  });
}
