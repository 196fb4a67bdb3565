import type { ErrorType } from "../util/errors.js";

/** Exit codes scripts can rely on. */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  notFound: 3,
  conflict: 4,
  hostProblem: 5,
  timeout: 6,
  forbidden: 7,
  capacity: 8,
  /** The Kubernetes version asked for is offered but not installed on the server's host: `tempkube versions install <minor>`. */
  notInstalled: 9,
} as const;

export function exitCodeFor(type: ErrorType | undefined): number {
  switch (type) {
    case "invalid-input":
      return EXIT.usage;
    case "not-found":
      return EXIT.notFound;
    case "conflict":
      return EXIT.conflict;
    case "host":
      return EXIT.hostProblem;
    case "timeout":
      return EXIT.timeout;
    case "forbidden":
      return EXIT.forbidden;
    case "capacity":
      return EXIT.capacity;
    case "not-installed":
      return EXIT.notInstalled;
    default:
      return EXIT.failure;
  }
}
