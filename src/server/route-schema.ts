import { errorSchema } from "./schemas.js";

/** What each error status means to a caller, in the OpenAPI document of every route. */
const ERROR_MEANING: Record<number, string> = {
  400: "invalid input; the message names the field and the rule",
  401: "no valid bearer token",
  403: "not allowed for this token (policy or quota)",
  404: "no such cluster (or not yours)",
  409:
    "not possible in the cluster's current state; or (error `not-installed`) the Kubernetes version is offered but not " +
    "installed on the server's host: the message names the command that installs it, and nothing was made",
  429: "host capacity reached; retry later",
  503: "a part the request needs is not available now (for services: the services cluster); retry later",
};

/** The schema of a route: request parts validated, answers documented (errors by status). */
export function routeSchema(
  summary: string,
  parts: Record<string, unknown>,
  ok: Record<string, unknown> | undefined,
  okStatus = 200,
  tags = ["clusters"],
  meanings: Partial<Record<number, string>> = {},
) {
  const errors = Object.fromEntries(
    [400, 401, 403, 404, 409, 429, ...(meanings[503] ? [503] : [])].map((code) => [
      code,
      { ...errorSchema, description: meanings[code] ?? ERROR_MEANING[code] },
    ]),
  );
  return {
    schema: {
      summary,
      tags,
      security: [{ bearer: [] }],
      ...parts,
      response: { ...(ok ? { [okStatus]: ok } : {}), ...errors },
    },
  };
}
