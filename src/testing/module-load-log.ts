import { appendFileSync } from "node:fs";

/**
 * Module loader hooks (node:module register(), Node 20.6+) that append the URL of every ES
 * module, package entry and builtin loaded to the file named by $TEMPKUBE_MODULE_LOG, one a
 * line. CommonJS files required from inside a CommonJS package are not seen; the package's
 * entry, imported from ES modules, is. Registered by record-module-loads.ts.
 */
export async function load(
  url: string,
  context: unknown,
  next: (url: string, context: unknown) => Promise<unknown>,
): Promise<unknown> {
  if (process.env.TEMPKUBE_MODULE_LOG) appendFileSync(process.env.TEMPKUBE_MODULE_LOG, `${url}\n`);
  return next(url, context);
}
