import type { ErrorType } from "../util/errors.js";

/** The HTTP status of each kind of error, on every surface. */
export const STATUS: Record<ErrorType, number> = {
  "invalid-input": 400,
  "not-found": 404,
  conflict: 409,
  // 409, not 503: the host is fine and will stay as it is until someone installs the version;
  // retrying does not help, the command in the message does (README, "Versions on demand").
  "not-installed": 409,
  forbidden: 403,
  capacity: 429,
  setup: 503,
  host: 503,
  "child-process": 500,
  runtime: 500,
  timeout: 504,
};
