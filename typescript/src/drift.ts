// Schema drift: what an answer holds that the schema does not know, found as Python finds it.

import { ScalarType, type DescEnum, type DescField, type DescMessage } from "@bufbuild/protobuf";

import { PYTHON_SPACE, asciiJson, pythonJson, pythonRepr } from "./python-text.js";

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
 * values of JSON types their fields cannot take, and what else its values
 * cannot be (`invalid_value`: an integer out of range or with a fraction, a
 * field given under both its names, two members of a oneof, a null in an
 * array, an impossible date, ...): Python's `find_drift`'s drifts, in its
 * words. Other well-known types (Duration, Struct, ...) are read as they
 * are, not walked.
 */
export function findDrift(document: unknown, schema: DescMessage): Drift[] {
  const found: Drift[] = [];
  walkMessage(document, schema, "", found);
  return found;
}


const NOT_PLAIN = new RegExp(`${PYTHON_SPACE}|[.[\\]"]`, "u");
/** What Python's `int()` reads besides a JSON integer's text: spaces, a +, underscores. */
const PYTHON_INTEGER_TEXT = new RegExp(
  `^${PYTHON_SPACE}*[+-]?\\p{Nd}+(?:_\\p{Nd}+)*${PYTHON_SPACE}*$`,
  "u",
);

/** What the Python client's JSON paths do: `a.b`, or `a["b c"]` for a name that is not plain. */
export function memberPath(parent: string, name: string): string {
  if (name === "" || NOT_PLAIN.test(name)) {
    return `${parent}[${pythonJson(name)}]`;
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
  const setBy = new Map<number, string>(); // the key each field was given by
  const setIn = new Map<string, string>(); // the key each oneof was given by
  for (const [key, item] of Object.entries(value)) {
    const field = fields.get(key);
    if (field === undefined) {
      unknownMember(key, schema, memberPath(path, key), found);
      continue;
    }
    const fieldPath = memberPath(path, field.jsonName);
    const other = setBy.get(field.number);
    if (other !== undefined) {
      const detail = `set twice, as "${other}" and as "${key}"`;
      found.push({ path: fieldPath, kind: "invalid_value", detail });
      continue;
    }
    setBy.set(field.number, key);
    if (item === null) {
      continue; // unset
    }
    if (field.oneof !== undefined) {
      const first = setIn.get(field.oneof.name);
      if (first !== undefined) {
        const detail =
          `"${first}" and "${key}" are both set, but at most one field of oneof ` +
          `"${field.oneof.name}" may be`;
        found.push({ path: fieldPath, kind: "invalid_value", detail });
      }
      setIn.set(field.oneof.name, key);
    }
    walkField(item, field, fieldPath, found);
  }
}

/** A key as json_format reads an extension's: `[full.name]`. */
const EXTENSION_NAME = /^\[[a-zA-Z0-9._]*\]\n?$/;
/** A UTF-16 surrogate without its other half: no Unicode text (Python's JSON reader keeps it). */
const UNPAIRED_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function unknownMember(key: string, schema: DescMessage, path: string, found: Drift[]): void {
  if (EXTENSION_NAME.test(key) && schema.proto.extensionRange.length === 0) {
    const detail = `"${key}" names an extension, and ${schema.name} has none`;
    found.push({ path, kind: "invalid_value", detail });
  } else if (UNPAIRED_SURROGATE.test(key)) {
    found.push({ path, kind: "invalid_value", detail: "the key has an unpaired surrogate" });
  } else {
    found.push({ path, kind: "unknown_field", detail: `"${key}" is not a field of ${schema.name}` });
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
        if (item === null && !holdsNull(field)) {
          const detail = "null is not allowed in an array";
          found.push({ path: itemPath, kind: "invalid_value", detail });
        } else if (field.listKind === "message") walkMessage(item, field.message, itemPath, found);
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
        if (field.mapKey === ScalarType.STRING && UNPAIRED_SURROGATE.test(key)) {
          const detail = "the map key has an unpaired surrogate";
          found.push({ path: itemPath, kind: "invalid_value", detail });
        }
        if (item === null && !holdsNull(field)) {
          const detail = "null is not allowed as a map value";
          found.push({ path: itemPath, kind: "invalid_value", detail });
        } else if (field.mapKind === "message") walkMessage(item, field.message, itemPath, found);
        else if (field.mapKind === "enum") walkEnum(item, field.enum, itemPath, found);
        else walkScalar(item, field.scalar, itemPath, found);
      }
      return;
  }
}

/** Whether a list's items or a map's values may be null: google.protobuf.Value, NullValue. */
function holdsNull(field: DescField): boolean {
  const value = "google.protobuf.Value";
  const nullValue = "google.protobuf.NullValue";
  if (field.fieldKind === "list") {
    if (field.listKind === "message") return field.message.typeName === value;
    if (field.listKind === "enum") return field.enum.typeName === nullValue;
  } else if (field.fieldKind === "map") {
    if (field.mapKind === "message") return field.message.typeName === value;
    if (field.mapKind === "enum") return field.enum.typeName === nullValue;
  }
  return false;
}

function walkEnum(value: unknown, schema: DescEnum, path: string, found: Drift[]): void {
  if (schema.typeName === "google.protobuf.NullValue") {
    return;
  }
  const invalid = (detail: string): void => {
    found.push({ path, kind: "invalid_value", detail });
  };
  let number: bigint;
  if (typeof value === "string") {
    if (UNPAIRED_SURROGATE.test(value)) {
      invalid("the string has an unpaired surrogate");
      return;
    }
    if (schema.values.some((item) => item.name === value)) {
      return;
    }
    if (!INTEGER_TEXT.test(value)) {
      if (PYTHON_INTEGER_TEXT.test(value)) {
        invalid(`expected an enum value name or an integer, got "${value}"`);
      } else {
        found.push({ path, kind: "unknown_enum_value", detail: unknownEnumValue(path, value, schema) });
      }
      return;
    }
    number = BigInt(value);
  } else if (typeof value === "number") {
    if (!Number.isInteger(value)) {
      invalid(`expected an enum value name or an integer, got ${pythonRepr(value)}`);
      return;
    }
    number = BigInt(value);
  } else {
    const detail = `expected an enum value name or number, got ${kindOf(value)}`;
    found.push({ path, kind: "wrong_json_type", detail });
    return;
  }
  if (number < INT32[0] || number > INT32[1]) {
    invalid(`enum number ${number} is out of the int32 range`);
  } else if (!schema.values.some((item) => BigInt(item.number) === number)) {
    found.push({ path, kind: "unknown_enum_value", detail: unknownEnumValue(path, value, schema) });
  }
}

function unknownEnumValue(path: string, value: unknown, schema: DescEnum): string {
  const shown = typeof value === "string" ? pythonJson(value) : String(value);
  return `${path}=${shown} is not a value of ${schema.name}`;
}

function walkScalar(value: unknown, scalar: ScalarType, path: string, found: Drift[]): void {
  let expected: string | undefined;
  if (scalar === ScalarType.STRING) {
    expected = typeof value === "string" ? undefined : "a string";
  } else if (scalar === ScalarType.BYTES) {
    expected = typeof value === "string" ? undefined : "a base64 string";
  } else if (scalar === ScalarType.BOOL) {
    expected = typeof value === "boolean" ? undefined : "true or false";
  } else if (typeof value !== "number" && typeof value !== "string") {
    const integer = INTEGER_RANGES.has(scalar);
    expected = integer ? "an integer (a number or a string)" : "a number";
  }
  if (expected !== undefined) {
    found.push({ path, kind: "wrong_json_type", detail: `expected ${expected}, got ${kindOf(value)}` });
    return;
  }
  const range = INTEGER_RANGES.get(scalar);
  if (range !== undefined) {
    walkInteger(value as number | string, scalar, range, path, found);
  } else if (scalar === ScalarType.DOUBLE || scalar === ScalarType.FLOAT) {
    walkFloat(value as number | string, scalar, path, found);
  } else if (scalar === ScalarType.STRING && UNPAIRED_SURROGATE.test(value as string)) {
    found.push({ path, kind: "invalid_value", detail: "the string has an unpaired surrogate" });
  }
}

/** The largest float: a double past it is out of a float field's range. */
const FLOAT32_MAX = 3.4028234663852886e38;

function walkFloat(value: number | string, scalar: ScalarType, path: string, found: Drift[]): void {
  const invalid = (detail: string): void => {
    found.push({ path, kind: "invalid_value", detail });
  };
  let number: number;
  if (typeof value === "string") {
    if (SPECIAL_FLOATS.has(value)) {
      return;
    }
    if (!NUMBER_TEXT.test(value)) {
      invalid(`expected a number or "NaN", "Infinity", got "${value}"`);
      return;
    }
    number = Number(value);
  } else {
    number = value; // JSON.parse made a number past the doubles Infinity
  }
  if (!Number.isFinite(number)) {
    const shown = typeof value === "string" ? value : "the number";
    invalid(`${shown} is out of the double range: use "Infinity" or "-Infinity"`);
  } else if (scalar === ScalarType.FLOAT && Math.abs(number) > FLOAT32_MAX) {
    invalid(`${typeof value === "string" ? value : pythonRepr(value)} is out of the float range`);
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
const MAX_INTEGER_DIGITS = 21;
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
    // As Python's json.dumps: ASCII, a double as its repr (Infinity too).
    const shown =
      typeof value === "string" ? asciiJson(value) : Number.isFinite(value) ? pythonRepr(value) : String(value);
    found.push({ path, kind: "invalid_value", detail: `expected an integer, got ${shown}` });
  } else if (number === BEYOND || number < low || number > high) {
    // Python shows the value as given when it is past every range, else the integer.
    const shown = number === BEYOND ? String(value) : number;
    const type = ScalarType[scalar].toLowerCase();
    found.push({ path, kind: "invalid_value", detail: `${shown} is out of the ${type} range [${low}, ${high}]` });
  } else if (typeof value === "string" && !INTEGER_TEXT.test(value) && (number > EXACT || number < -EXACT)) {
    const detail =
      `"${value}" has a fraction or an exponent and is beyond 2^53, where it cannot be read ` +
      "exactly: write the integer's decimal digits alone";
    found.push({ path, kind: "invalid_value", detail });
  }
}

/** Past 2^53, a double holds no longer every integer. */
const EXACT = 2n ** 53n;

function walkTimestamp(value: unknown, path: string, found: Drift[]): void {
  if (typeof value !== "string") {
    const detail = `expected an RFC 3339 timestamp string such as "2025-01-01T00:00:00Z", got ${kindOf(value)}`;
    found.push({ path, kind: "wrong_json_type", detail });
  } else if (!RFC3339_TEXT.test(value)) {
    const detail = `"${value}" is not an RFC 3339 timestamp such as "2024-05-30T11:32:44.279Z"`;
    found.push({ path, kind: "invalid_value", detail });
  } else {
    const problem = impossibleTime(value);
    if (problem !== undefined) {
      const form = 'an RFC 3339 timestamp string such as "2025-01-01T00:00:00Z"';
      found.push({ path, kind: "invalid_value", detail: `"${value}" is not ${form}: ${problem}` });
    }
  }
}

/** Seconds of the first and the last second a Timestamp may hold (0001-01-01, 9999-12-31). */
const TIMESTAMP_SECONDS: readonly [number, number] = [-62135596800, 253402300799];

/**
 * What is wrong with a timestamp of RFC 3339's form, in the words of Python's
 * reader (protobuf's `FromJsonString`): a month or day no date has, a day its
 * month lacks, or an instant outside the years 1 to 9999. Undefined if none.
 */
function impossibleTime(value: string): string | undefined {
  const part = (start: number, end: number): number => Number(value.slice(start, end));
  const [year, month, day] = [part(0, 4), part(5, 7), part(8, 10)];
  if (month < 1 || month > 12 || day < 1 || day > 31) {
    return `time data '${value.slice(0, 19)}' does not match format '%Y-%m-%dT%H:%M:%S'`;
  }
  const midnight = new Date(0); // the proleptic Gregorian calendar, years 1 to 9999 included
  midnight.setUTCFullYear(year, month - 1, day);
  if (midnight.getUTCDate() !== day) {
    return "day is out of range for month"; // the date rolled over into the next month
  }
  const zone = /([+-])(\d\d):(\d\d)$/.exec(value);
  const offset = zone ? (zone[1] === "-" ? -1 : 1) * (Number(zone[2]) * 3600 + Number(zone[3]) * 60) : 0;
  const seconds =
    midnight.getTime() / 1000 + part(11, 13) * 3600 + part(14, 16) * 60 + part(17, 19) - offset;
  if (seconds < TIMESTAMP_SECONDS[0] || seconds > TIMESTAMP_SECONDS[1]) {
    const [low, high] = TIMESTAMP_SECONDS;
    return `Timestamp is not valid: Seconds ${seconds} must be in range [${low}, ${high}].`;
  }
  return undefined;
}
