import { TempkubeError } from "./errors.js";

/**
 * JSON with `//` and `/* *\/` comments and trailing commas, as users paste request bodies
 * from API docs. Comment markers inside strings ("http://…") are left alone.
 */
export function parseJsonWithComments(text: string): unknown {
  let out = "";
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      out += c;
      if (c === "\\") {
        out += text[++i] ?? "";
        continue;
      }
      if (c === '"') inString = false;
      continue;
    }
    if (c === '"') {
      inString = true;
      out += c;
      continue;
    }
    if (c === "/" && text[i + 1] === "/") {
      while (i < text.length && text[i] !== "\n") i++;
      out += "\n";
      continue;
    }
    if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      i = end < 0 ? text.length : end + 1;
      continue;
    }
    out += c;
  }
  out = out.replace(/,(\s*[}\]])/g, "$1");
  if (!out.trim()) return {};
  try {
    return JSON.parse(out);
  } catch (err) {
    throw new TempkubeError("invalid-input", `request body is not valid JSON: ${(err as Error).message}`);
  }
}
