import { pino } from "pino";

/** The one logger. Human progress output goes to stderr through `progress` instead. */
export const logger = pino({
  level: process.env.TEMPKUBE_LOG_LEVEL ?? "warn",
  redact: { paths: ["token", "*.token", "password", "*.password", "key", "*.key"], censor: "[redacted]" },
});

export { progress, seconds } from "./progress.js";
