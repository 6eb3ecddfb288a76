// Schema drift: what an answer holds that the schema does not know, and what a client does with it.

import { ScalarType, type DescEnum, type DescField, type DescMessage } from "@bufbuild/protobuf";

/** One place where an answer says what the schema does not know. */
export interface Drift {
  /** The JSON path of the value: `userTreatments[0].newField`, `treatment.status`. */
  readonly path: string;
  /** `unknown_field`, `unknown_enum_value`, `wrong_json_type` or `invalid_value`. */
  readonly kind: "unknown_field" | "unknown_enum_value" | "wrong_json_type" | "invalid_value";
  /** What is there, in words: `treatment.status="BRAND_NEW_STATUS" is not a value of Status`. */
  readonly detail: string;
}

/** Called with the RPC's name (`GetTreatments`) and one drift, for every drift of every answer. */
export type DriftCallback = (method: string, drift: Drift) => void;

/**
 * Every place a parsed JSON document of a message type says what the schema
 * does not know: members its type lacks (at any depth, in lists and maps
 * too), enum values it lacks (a name, or a number the enum does not name),
 * values of JSON types their fields cannot take, and values of the right
 * JSON type their fields still cannot take (`invalid_value`: an integer out
 * of its type's range or with a fraction, a double's string that is no
 * number, a Timestamp that is not RFC 3339). Other well-known types
 * (Duration, Struct, ...) are read as they are, not walked.
 */
export function findDrift(document: unknown, schema: DescMessage): Drift[] {
  const found: Drift[] = [];
  walkMessage(document, schema, "", found);
  return found;
}

/** A JSON path with `[*]` for every array index and map key: where drift is counted and warned of. */
export function placeOf(path: string): string {
  return path.replace(/\[(?:\d+|"(?:[^"\\]|\\.)*")\]/g, "[*]");
}

/** What the Python client's JSON paths do: `a.b`, or `a["b c"]` for a name that is not plain. */
export function memberPath(parent: string, name: string): string {
  if (name === "" || /[\s.[\]"]/.test(name)) {
    return `${parent}[${JSON.stringify(name)}]`;
  }
  return parent ? `${parent}.${name}` : name;
}

function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  switch (typeof value) {
    case "boolean":
      return "a boolean";
    case "number":
      return "a number";
    case "string":
      return "a string";
    default:
      return "an object";
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const fieldsByKey = new WeakMap<DescMessage, Map<string, DescField>>();

function fieldsOf(schema: DescMessage): Map<string, DescField> {
  let fields = fieldsByKey.get(schema);
  if (fields === undefined) {
    fields = new Map<string, DescField>();
    for (const field of schema.fields) {
      fields.set(field.name, field);
    }
    for (const field of schema.fields) {
      fields.set(field.jsonName, field);
    }
    fieldsByKey.set(schema, fields);
  }
  return fields;
}

function walkMessage(value: unknown, schema: DescMessage, path: string, found: Drift[]): void {
  if (schema.typeName === "google.protobuf.Timestamp") {
    walkTimestamp(value, path, found);
    return;
  }
  if (schema.typeName.startsWith("google.protobuf.")) {
    return; // a well-known type: its JSON form is its own
  }
  if (!isObject(value)) {
    const detail = `expected a JSON object (${schema.name}), got ${kindOf(value)}`;
    found.push({ path, kind: "wrong_json_type", detail });
    return;
  }
  const fields = fieldsOf(schema);
  for (const [key, item] of Object.entries(value)) {
    const here = memberPath(path, key);
    const field = fields.get(key);
    if (field === undefined) {
      found.push({ path: here, kind: "unknown_field", detail: `"${key}" is not a field of ${schema.name}` });
    } else if (item !== null) {
      walkField(item, field, memberPath(path, field.jsonName), found);
    }
  }
}

function walkField(value: unknown, field: DescField, path: string, found: Drift[]): void {
  const wrong = (expected: string): void => {
    found.push({ path, kind: "wrong_json_type", detail: `expected ${expected}, got ${kindOf(value)}` });
  };
  switch (field.fieldKind) {
    case "message":
      walkMessage(value, field.message, path, found);
      return;
    case "enum":
      walkEnum(value, field.enum, path, found);
      return;
    case "scalar":
      walkScalar(value, field.scalar, path, found);
      return;
    case "list":
      if (!Array.isArray(value)) {
        wrong("an array");
        return;
      }
      value.forEach((item: unknown, index) => {
        const itemPath = `${path}[${index}]`;
        if (field.listKind === "message") walkMessage(item, field.message, itemPath, found);
        else if (field.listKind === "enum") walkEnum(item, field.enum, itemPath, found);
        else walkScalar(item, field.scalar, itemPath, found);
      });
      return;
    case "map":
      if (!isObject(value)) {
        wrong("a JSON object (a map)");
        return;
      }
      for (const [key, item] of Object.entries(value)) {
        const itemPath = `${path}["${key}"]`;
        if (field.mapKind === "message") walkMessage(item, field.message, itemPath, found);
        else if (field.mapKind === "enum") walkEnum(item, field.enum, itemPath, found);
        else walkScalar(item, field.scalar, itemPath, found);
      }
      return;
  }
}

function walkEnum(value: unknown, schema: DescEnum, path: string, found: Drift[]): void {
  if (schema.typeName === "google.protobuf.NullValue") {
    return;
  }
  const number = typeof value === "string" && /^-?\d+$/.test(value) ? Number(value) : value;
  const known =
    typeof number === "string"
      ? schema.values.some((item) => item.name === number)
      : typeof number === "number"
        ? schema.values.some((item) => item.number === number)
        : undefined;
  if (known === undefined) {
    const detail = `expected an enum value name or number, got ${kindOf(value)}`;
    found.push({ path, kind: "wrong_json_type", detail });
  } else if (!known) {
    const detail = `${path}=${JSON.stringify(value)} is not a value of ${schema.name}`;
    found.push({ path, kind: "unknown_enum_value", detail });
  }
}

function walkScalar(value: unknown, scalar: ScalarType, path: string, found: Drift[]): void {
  let expected: string | undefined;
  if (scalar === ScalarType.STRING || scalar === ScalarType.BYTES) {
    expected = typeof value === "string" ? undefined : "a string";
  } else if (scalar === ScalarType.BOOL) {
    expected = typeof value === "boolean" ? undefined : "true or false";
  } else if (typeof value !== "number" && typeof value !== "string") {
    expected = "a number (or a string)";
  }
  if (expected !== undefined) {
    found.push({ path, kind: "wrong_json_type", detail: `expected ${expected}, got ${kindOf(value)}` });
    return;
  }
  const range = INTEGER_RANGES.get(scalar);
  if (range !== undefined) {
    walkInteger(value as number | string, scalar, range, path, found);
  } else if (scalar === ScalarType.DOUBLE || scalar === ScalarType.FLOAT) {
    if (typeof value === "string" && !SPECIAL_FLOATS.has(value) && !NUMBER_TEXT.test(value)) {
      const detail = `expected a number or "NaN", "Infinity", got ${JSON.stringify(value)}`;
      found.push({ path, kind: "invalid_value", detail });
    }
  }
}

// The JSON number's text, an integer's, and a timestamp's as proto3 JSON reads one
// (the Python package's _json_text.py).
const NUMBER_TEXT = /^-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;
const INTEGER_TEXT = /^-?[0-9]+$/;
const RFC3339_TEXT =
  /^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$/;
const SPECIAL_FLOATS = new Set(["NaN", "Infinity", "-Infinity"]);

const INT32: readonly [bigint, bigint] = [-(2n ** 31n), 2n ** 31n - 1n];
const UINT32: readonly [bigint, bigint] = [0n, 2n ** 32n - 1n];
const INT64: readonly [bigint, bigint] = [-(2n ** 63n), 2n ** 63n - 1n];
const UINT64: readonly [bigint, bigint] = [0n, 2n ** 64n - 1n];
const INTEGER_RANGES = new Map<ScalarType, readonly [bigint, bigint]>([
  [ScalarType.INT32, INT32],
  [ScalarType.SINT32, INT32],
  [ScalarType.SFIXED32, INT32],
  [ScalarType.UINT32, UINT32],
  [ScalarType.FIXED32, UINT32],
  [ScalarType.INT64, INT64],
  [ScalarType.SINT64, INT64],
  [ScalarType.SFIXED64, INT64],
  [ScalarType.UINT64, UINT64],
  [ScalarType.FIXED64, UINT64],
]);

/** Integer digits past which a number is beyond every integer type's range. */
const MAX_INTEGER_DIGITS = 40;
/** What `integerOf` gives for a number past every integer type's range. */
const BEYOND = Symbol("beyond every range");

/**
 * The integer a number or a string gives, as proto3 JSON reads it: undefined for none (a
 * fraction, or no number), BEYOND past every range. A string is read exactly, its exponent
 * applied to its digits (never a double's rounding, never 10 to a huge power); a JSON number
 * is what `JSON.parse` made of it, a double (`walkInteger` reads one past 2^53 as such).
 */
function integerOf(value: number | string): bigint | typeof BEYOND | undefined {
  if (typeof value === "number") {
    return Number.isInteger(value) ? BigInt(value) : undefined;
  }
  if (INTEGER_TEXT.test(value)) {
    return value.replace(/^-?0*/, "").length > MAX_INTEGER_DIGITS ? BEYOND : BigInt(value);
  }
  const parts = NUMBER_PARTS.exec(value);
  if (parts === null) return undefined;
  const [, sign = "", whole = "", fraction = "", exponent = "0"] = parts;
  let digits = (whole + fraction).replace(/^0+/, "");
  let scale = Number(exponent) - fraction.length; // the value is digits × 10^scale
  const trailing = digits.length - digits.replace(/0+$/, "").length;
  digits = digits.slice(0, digits.length - trailing);
  scale += trailing;
  if (digits === "") return 0n;
  if (scale < 0) return undefined; // a fraction
  if (digits.length + scale > MAX_INTEGER_DIGITS) return BEYOND;
  return BigInt(`${sign}${digits}`) * 10n ** BigInt(scale);
}

const NUMBER_PARTS = /^(-?)([0-9]+)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?$/;

function walkInteger(
  value: number | string,
  scalar: ScalarType,
  [low, high]: readonly [bigint, bigint],
  path: string,
  found: Drift[],
): void {
  if (typeof value === "number" && Number.isInteger(value) && !Number.isSafeInteger(value)) {
    // JSON.parse rounded it to a double: compared as doubles, out of range only past rounding.
    if (value < Number(low) || value > Number(high)) {
      const type = ScalarType[scalar].toLowerCase();
      found.push({ path, kind: "invalid_value", detail: `${value} is out of the ${type} range [${low}, ${high}]` });
    }
    return;
  }
  const number = integerOf(value);
  if (number === undefined) {
    const shown = typeof value === "string" ? JSON.stringify(value) : String(value); // Infinity too
    found.push({ path, kind: "invalid_value", detail: `expected an integer, got ${shown}` });
  } else if (number === BEYOND || number < low || number > high) {
    // Python shows the value as given when it is past every range, else the integer.
    const shown = number === BEYOND || number < INT64[0] || number > UINT64[1] ? String(value) : number;
    const type = ScalarType[scalar].toLowerCase();
    found.push({ path, kind: "invalid_value", detail: `${shown} is out of the ${type} range [${low}, ${high}]` });
  }
}

function walkTimestamp(value: unknown, path: string, found: Drift[]): void {
  if (typeof value !== "string") {
    const detail = `expected an RFC 3339 timestamp string such as "2025-01-01T00:00:00Z", got ${kindOf(value)}`;
    found.push({ path, kind: "wrong_json_type", detail });
  } else if (!RFC3339_TEXT.test(value)) {
    const detail = `"${value}" is not an RFC 3339 timestamp such as "2024-05-30T11:32:44.279Z"`;
    found.push({ path, kind: "invalid_value", detail });
  }
}

/** Where the warnings of schema drift go: Node's process warnings, else the console. */
function emitWarning(message: string): void {
  const process = (globalThis as { process?: { emitWarning?: (w: string, o: object) => void } })
    .process;
  if (typeof process?.emitWarning === "function") {
    process.emitWarning(message, { type: "SchemaDriftWarning", code: "AUXIA_SCHEMA_DRIFT" });
  } else {
    console.warn(`SchemaDriftWarning: ${message}`);
  }
}

/** A client's record of schema drift: counts, a warning once per method and place, a callback. */
export class DriftReports {
  /** How many answers of each method held drift at each place (`[*]` for indexes and keys). */
  readonly counts = new Map<string, Map<string, number>>();

  constructor(
    readonly onDrift: DriftCallback | undefined,
    readonly strict: boolean,
  ) {}

  /** Count the drifts of one answer, pass each to the callback, and warn of places new to it. */
  report(method: string, drifts: readonly Drift[], warn = true): void {
    let byPlace = this.counts.get(method);
    if (byPlace === undefined) {
      byPlace = new Map<string, number>();
      this.counts.set(method, byPlace);
    }
    const firsts = new Map<string, Drift>();
    for (const drift of drifts) {
      const place = placeOf(drift.path);
      if (!firsts.has(place)) firsts.set(place, drift);
    }
    const fresh: Drift[] = [];
    for (const [place, drift] of firsts) {
      const count = byPlace.get(place) ?? 0;
      if (count === 0) fresh.push(drift);
      byPlace.set(place, count + 1);
    }
    for (const drift of drifts) {
      this.onDrift?.(method, drift);
    }
    if (warn && !this.strict) {
      for (const drift of fresh) {
        emitWarning(describe(method, drift));
      }
    }
  }
}

/** The words of a drift warning (the Python client's SchemaDriftWarning's). */
export function describe(method: string, drift: Drift): string {
  return (
    `${method} answered what the schema does not know (${drift.kind} at ` +
    `${drift.path || "the root"}): ${drift.detail}; this package may be older than the API`
  );
}
