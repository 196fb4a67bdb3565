import type { FastifyInstance } from "fastify";
import type { TokenInfo } from "../store/store.js";
import type { CreateTokenRequest, TokenService } from "../service/token-service.js";
import { caller } from "./auth.js";
import { routeSchema } from "./route-schema.js";
import { createTokenBodySchema, tokenIdParamsSchema, tokenSchema } from "./schemas.js";

/** The JSON a client sees of a token: never its secret, but once, at creation. */
export function tokenView(t: TokenInfo, secret?: string) {
  return {
    id: t.id,
    name: t.name,
    admin: t.admin,
    limits: t.limits,
    createdAt: new Date(t.createdAt).toISOString(),
    revokedAt: t.revokedAt === null ? null : new Date(t.revokedAt).toISOString(),
    ...(secret ? { token: secret } : {}),
  };
}

/** /v1/tokens: admins create, list and revoke tokens; any token reads its own (/v1/tokens/self). */
export function registerTokenRoutes(app: FastifyInstance, tokens: TokenService): void {
  const tags = ["tokens"];

  app.post<{ Body: CreateTokenRequest }>(
    "/v1/tokens",
    routeSchema(
      "Create an API token (admin); the secret is in this answer only",
      { body: createTokenBodySchema },
      tokenSchema,
      201,
      tags,
    ),
    async (req, reply) => {
      const { info, secret } = await tokens.create(caller(req), req.body);
      return reply.status(201).send(tokenView(info, secret));
    },
  );

  app.get(
    "/v1/tokens",
    routeSchema(
      "List API tokens (admin); never their secrets",
      {},
      { type: "object", properties: { items: { type: "array", items: tokenSchema } } },
      200,
      tags,
    ),
    async (req) => ({ items: (await tokens.list(caller(req))).map((t) => tokenView(t)) }),
  );

  app.get(
    "/v1/tokens/self",
    routeSchema("The calling token: its name and limits", {}, tokenSchema, 200, tags),
    async (req) => tokenView(await tokens.self(caller(req))),
  );

  app.delete<{ Params: { id: number } }>(
    "/v1/tokens/:id",
    routeSchema(
      "Revoke an API token (admin); its clusters keep their lifetimes",
      { params: tokenIdParamsSchema },
      tokenSchema,
      200,
      tags,
    ),
    async (req) => tokenView(await tokens.revoke(caller(req), req.params.id)),
  );
}
