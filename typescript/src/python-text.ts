// Text as the Python package writes it in its messages, so that every language's drift reads
// the same: its whitespace, its repr of a double, its json.dumps of a string.

/** Python's whitespace (`str.isspace`, its `re`'s `\s`), as a class: JavaScript's `\s` differs. */
export const PYTHON_SPACE =
  "[\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";

const JSON_ESCAPES: ReadonlyMap<string, string> = new Map([
  ['"', '\\"'],
  ["\\", "\\\\"],
  ["\n", "\\n"],
  ["\r", "\\r"],
  ["\t", "\\t"],
  ["\b", "\\b"],
  ["\f", "\\f"],
]);

function escape(character: string): string {
  return `\\u${character.charCodeAt(0).toString(16).padStart(4, "0")}`;
}

/** A string as Python's `json.dumps(..., ensure_ascii=False)` writes it (lone surrogates raw). */
export function pythonJson(value: string): string {
  const escaped = value.replace(/["\\\u0000-\u001f]/g, (c) => JSON_ESCAPES.get(c) ?? escape(c));
  return `"${escaped}"`;
}

/** A string as Python's `json.dumps` writes it: every character past `~` escaped. */
export function asciiJson(value: string): string {
  return pythonJson(value).replace(/[\u007f-\uffff]/g, escape);
}

/** A double as Python's `repr` writes it: `0.5`, `100.0`, `1e-07`, `1e+16`, `inf`, `nan`. */
export function pythonRepr(value: number): string {
  if (!Number.isFinite(value)) {
    return Number.isNaN(value) ? "nan" : value > 0 ? "inf" : "-inf";
  }
  const size = Math.abs(value);
  if (value !== 0 && (size < 1e-4 || size >= 1e16)) {
    // An exponent of two digits at least; JavaScript's digits are the shortest, as Python's.
    return value.toExponential().replace(/e([+-])(\d)$/, "e$10$2");
  }
  if (Number.isInteger(value)) {
    return Object.is(value, -0) ? "-0.0" : `${value}.0`;
  }
  return String(value);
}
