import type { FastifyInstance, FastifyRequest } from "fastify";
import type { TokenIdentity } from "../core/quota.js";
import type { TokenService } from "../service/token-service.js";

declare module "fastify" {
  interface FastifyRequest {
    identity?: TokenIdentity;
  }
}

/** Paths anyone may read: probes, scrapes and the API's own description. */
const PUBLIC_PATHS = new Set(["/healthz", "/metrics", "/openapi.json"]);

/**
 * Every other request carries a bearer token the store knows (401 otherwise); its identity
 * rides on the request. Routes marked `config.ownAuth` (the ephemeron surface, whose callers
 * hold /auth JWTs) authenticate their callers themselves.
 */
export function requireBearerToken(app: FastifyInstance, tokens: TokenService): void {
  app.addHook("onRequest", async (req: FastifyRequest) => {
    if (PUBLIC_PATHS.has(req.url)) return;
    if (req.routeOptions.config?.ownAuth) return;
    // No route there: the ephemeron surface's own 404 ({"message": "Not Found"}), as the reference answers.
    if (req.routeOptions.url === undefined && /^\/ephemeron(\/|\?|$)/.test(req.url)) return;
    const header = req.headers.authorization ?? "";
    const token = header.startsWith("Bearer ") ? header.slice(7).trim() : "";
    const identity = token ? await tokens.identify(token) : undefined;
    if (!identity)
      throw Object.assign(new Error("a valid bearer token is required (Authorization: Bearer <token>)"), {
        statusCode: 401,
      });
    req.identity = identity;
  });
}

/** The caller of an authenticated route (set by requireBearerToken before any handler runs). */
export function caller(req: FastifyRequest): TokenIdentity {
  return req.identity!;
}
