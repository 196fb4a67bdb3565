/** One REST call as a client makes it: bearer token (when given), JSON body; the answer as status, JSON (when it is), text and type. */
export interface RestAnswer {
  status: number;
  json: Record<string, any>;
  text: string;
  type: string;
}

export async function restCall(
  baseUrl: string,
  token: string | undefined,
  method: string,
  path: string,
  body?: unknown,
): Promise<RestAnswer> {
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json: Record<string, any> = {};
  try {
    json = JSON.parse(text) as Record<string, any>;
  } catch {
    /* YAML, plain text or empty */
  }
  return { status: res.status, json, text, type: res.headers.get("content-type") ?? "" };
}
