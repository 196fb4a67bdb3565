import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import {
  claimsCaller,
  NotYoursError,
  tokenCaller,
  type EphemeralServices,
  type ServiceCaller,
} from "../service/ephemeral-services.js";
import type { TokenService } from "../service/token-service.js";
import type { ServiceAuth } from "../services/service-auth.js";
import { TempkubeError } from "../util/errors.js";
import { STATUS } from "./error-status.js";
import { SERVICE_ID_PATTERN } from "./schemas.js";

/** Where the ephemeron-compatible surface lives; requests there authenticate themselves (requireBearerToken lets them by). */
export const EPHEMERON_PREFIX = "/ephemeron";

declare module "fastify" {
  interface FastifyRequest {
    serviceCaller?: ServiceCaller;
  }
  interface FastifyContextConfig {
    /** The route authenticates its own callers (the ephemeron surface: /auth JWTs). */
    ownAuth?: boolean;
  }
}

/**
 * CORS as the reference's API server sets it (qualified/ephemeron src/bin/api.rs: any origin;
 * authorization and content-type headers; DELETE, GET, OPTIONS, PATCH, POST): its callers are
 * browsers holding an /auth token. No cookies are involved, so "*" gives nothing away.
 */
const CORS_HEADERS = {
  "access-control-allow-origin": "*",
  "access-control-allow-headers": "authorization, content-type",
  "access-control-allow-methods": "DELETE, GET, OPTIONS, PATCH, POST",
  "access-control-max-age": "600",
};

const idParams = {
  type: "object",
  required: ["id"],
  properties: { id: { type: "string", pattern: SERVICE_ID_PATTERN } },
} as const;
/** u32 in the reference (PresetPayload, PatchPayload): a bigger or negative number is a 400 there too. */
const lifetimeMinutes = { type: "integer", minimum: 0, maximum: 4294967295 } as const;
const errorShape = { type: "object", properties: { message: { type: "string" } } } as const;
const tags = ["ephemeron"];

/**
 * The API of qualified/ephemeron (src/api/mod.rs, handlers.rs, auth/), same paths, bodies and
 * answers, under /ephemeron: `POST /` → 202 `{id, expirationTime}`, `GET /{id}` →
 * `{host|null, expirationTime, tls}`, `PATCH /{id}` → `{expirationTime}`, `DELETE /{id}` → 204,
 * `POST /auth` → `{token}`; every error `{"message": …}`. Callers are /auth tokens (who see and
 * touch only what they created: 403 "Forbidden" otherwise) or tempkube tokens (owner: the
 * token; an admin token may act on every service).
 */
export function registerEphemeronRoutes(
  app: FastifyInstance,
  services: EphemeralServices,
  auth: ServiceAuth,
  tokens: TokenService,
): Promise<void> {
  return app.register(
    async (scope) => {
      scope.setErrorHandler((err, _req, reply) => {
        if (err instanceof NotYoursError) return reply.status(403).send({ message: "Forbidden" });
        if (err instanceof TempkubeError) return reply.status(STATUS[err.type]).send({ message: err.message });
        const e = err as { validation?: unknown; statusCode?: number; message: string };
        if (e.validation) return reply.status(400).send({ message: e.message });
        if (e.statusCode && e.statusCode < 500) return reply.status(e.statusCode).send({ message: e.message });
        return reply.status(500).send({ message: "Internal Server Error" });
      });
      scope.setNotFoundHandler((_req, reply) => reply.status(404).send({ message: "Not Found" }));
      scope.addHook("onSend", async (_req, reply, payload) => {
        reply.headers(CORS_HEADERS);
        return payload;
      });
      // Every route but /auth, the health answer and preflights needs a bearer token (filter.rs with_authorization).
      scope.addHook("onRequest", async (req) => {
        if (req.method === "OPTIONS" || !req.routeOptions.config.ownAuth) return;
        if (req.routeOptions.url === `${EPHEMERON_PREFIX}/auth`) return;
        if (req.method === "GET" && (req.routeOptions.url ?? "").replace(/\/$/, "") === EPHEMERON_PREFIX) return;
        req.serviceCaller = await authenticate(req, auth, tokens);
      });

      const config = { ownAuth: true };
      const who = (req: FastifyRequest) => req.serviceCaller!;

      // The reference's health check: GET / → "OK".
      // "/" under the prefix answers both /ephemeron and /ephemeron/ (prefixTrailingSlash "both").
      scope.get("/", { config }, async (_req, reply) => reply.type("text/plain").send("OK"));
      scope.options("/", { config }, preflight);
      scope.options("/*", { config }, preflight);

      scope.post<{ Body: { app: string; key: string; uid: string; gid?: string | null } }>(
        "/auth",
        {
          config,
          schema: {
            summary: "Trade an app's key for a 5-minute token on behalf of one of its users (sub uid.app)",
            tags,
            body: {
              type: "object",
              required: ["app", "key", "uid"],
              properties: {
                app: { type: "string" },
                key: { type: "string" },
                uid: { type: "string", description: "ASCII letters and digits, at most 63 − (len(app)+1)" },
                gid: { type: ["string", "null"], description: "a group: its services' pods get the label gid.app" },
              },
            },
            response: {
              200: { type: "object", properties: { token: { type: "string" } } },
              400: errorShape,
              401: errorShape,
            },
          },
        },
        async (req, reply) => {
          const answer = await auth.issue(req.body);
          return reply.status(answer.status).send(answer.body);
        },
      );

      scope.post<{ Body: { preset: string; lifetimeMinutes: number } }>(
        "/",
        {
          config,
          schema: {
            summary: "Create a service from a preset for lifetimeMinutes (202: it is on its way; GET it for its host)",
            tags,
            security: [{ bearer: [] }],
            body: {
              type: "object",
              required: ["preset", "lifetimeMinutes"],
              properties: { preset: { type: "string" }, lifetimeMinutes },
            },
            response: {
              202: {
                type: "object",
                properties: { id: { type: "string" }, expirationTime: { type: "string", format: "date-time" } },
              },
              ...errors(),
            },
          },
        },
        async (req, reply) => {
          const e = await services.create(who(req), req.body);
          return reply.status(202).send({ id: e.metadata.name, expirationTime: e.spec.expirationTime });
        },
      );

      scope.get<{ Params: { id: string } }>(
        "/:id",
        {
          config,
          schema: {
            summary: "A service's host (null until it serves), expiry and whether it has its own TLS certificate",
            tags,
            security: [{ bearer: [] }],
            params: idParams,
            response: {
              200: {
                type: "object",
                properties: {
                  host: { type: ["string", "null"] },
                  expirationTime: { type: "string", format: "date-time" },
                  tls: { type: "boolean" },
                },
              },
              ...errors(),
            },
          },
        },
        async (req) => {
          const v = services.view(await services.get(who(req), req.params.id));
          return { host: v.host, expirationTime: v.expirationTime, tls: v.tls };
        },
      );

      scope.patch<{ Params: { id: string }; Body: { lifetimeMinutes: number } }>(
        "/:id",
        {
          config,
          schema: {
            summary: "A new expiry, lifetimeMinutes from now",
            tags,
            security: [{ bearer: [] }],
            params: idParams,
            body: { type: "object", required: ["lifetimeMinutes"], properties: { lifetimeMinutes } },
            response: {
              200: { type: "object", properties: { expirationTime: { type: "string", format: "date-time" } } },
              ...errors(),
            },
          },
        },
        async (req) => {
          const e = await services.extend(who(req), req.params.id, req.body.lifetimeMinutes);
          return { expirationTime: e.spec.expirationTime };
        },
      );

      scope.delete<{ Params: { id: string } }>(
        "/:id",
        {
          config,
          schema: {
            summary: "Delete a service and everything it owns",
            tags,
            security: [{ bearer: [] }],
            params: idParams,
            response: { 204: { type: "null" }, ...errors() },
          },
        },
        async (req, reply) => {
          await services.delete(who(req), req.params.id);
          return reply.status(204).send();
        },
      );
    },
    { prefix: EPHEMERON_PREFIX },
  ) as unknown as Promise<void>;
}

async function preflight(_req: FastifyRequest, reply: FastifyReply) {
  return reply.status(204).send();
}

function errors() {
  return Object.fromEntries([400, 401, 403, 404, 503].map((code) => [code, errorShape]));
}

/**
 * `Authorization: Bearer <token>`: an /auth JWT this server signed, or a tempkube token
 * (`tk_…`). Anything else is the reference's 401 "Unauthorized".
 */
async function authenticate(req: FastifyRequest, auth: ServiceAuth, tokens: TokenService): Promise<ServiceCaller> {
  const header = req.headers.authorization ?? "";
  const token = header.startsWith("Bearer ") ? header.slice(7).trim() : "";
  if (token.startsWith("tk_")) {
    const identity = await tokens.identify(token);
    if (identity) return tokenCaller(identity);
  } else if (token) {
    const claims = await auth.verify(token);
    if (claims) return claimsCaller(claims);
  }
  throw Object.assign(new Error("Unauthorized"), { statusCode: 401 });
}
