// Request validation read from the descriptors, as the Python package's `validate`.
//
// Every rule is written once, in the protos: `google.api.field_behavior`
// (REQUIRED, OUTPUT_ONLY), `oneof_required`, and `field_rules` /
// `message_rules` (auxia/decision/model/field_rules.proto). The violations,
// their JSON paths, their order and their words are Python's (a test holds
// the three languages to the same verdicts on drawn requests).

import {
  create,
  getOption,
  type DescEnum,
  type DescField,
  type DescMessage,
  type DescOneof,
  type MessageInitShape,
} from "@bufbuild/protobuf";
import { FeatureSet_FieldPresence, anyPack } from "@bufbuild/protobuf/wkt";
import { reflect, type ReflectMessage } from "@bufbuild/protobuf/reflect";

import { memberPath } from "./drift.js";
import { ApiError, Code } from "./errors.js";
import { field_rules, message_rules } from "./gen/auxia/decision/model/field_rules_pb.js";
import { oneof_required } from "./gen/auxia/decision/model/oneof_behavior_pb.js";
import { FieldBehavior, field_behavior } from "./gen/google/api/field_behavior_pb.js";
import {
  BadRequestSchema,
  BadRequest_FieldViolationSchema,
  type BadRequest_FieldViolation,
} from "./gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "./gen/google/rpc/status_pb.js";

/** What validate found: errors make a request invalid; warnings name OUTPUT_ONLY fields it set. */
export interface ValidationResult {
  /** Each violation by the JSON path of its field (`surfaces[0].surface`). */
  readonly errors: readonly BadRequest_FieldViolation[];
  /** OUTPUT_ONLY fields the request set: a server ignores them (AIP-203) and the call goes on. */
  readonly warnings: readonly BadRequest_FieldViolation[];
  /** Whether the request has no errors. */
  readonly ok: boolean;
}

/** What validate says of a REQUIRED field that is not set. */
const REQUIRED = "required";

/**
 * Return every violation of a request (a message, or a plain object of its
 * fields) at once; the message is not changed.
 *
 * Checks REQUIRED fields (a proto3 scalar holding its default value counts as
 * missing), oneofs marked `oneof_required`, the `field_rules` of values
 * (patterns, minimums), enum values the schema defines, and the
 * `message_rules` across fields, at any depth; OUTPUT_ONLY fields that are
 * set are warnings: the rules written in the protos, before anything is sent.
 * The server checks more (a minimum count above the maximum, a surface or a
 * data field its project lacks, an attribute given twice or of another type).
 */
export function validate<Desc extends DescMessage>(
  schema: Desc,
  request: MessageInitShape<Desc>,
): ValidationResult {
  const errors: BadRequest_FieldViolation[] = [];
  const warnings: BadRequest_FieldViolation[] = [];
  walk(reflect(schema, create(schema, request)), "", errors, warnings);
  return { errors, warnings, ok: errors.length === 0 };
}

/**
 * Validate a request; throw an ApiError (INVALID_ARGUMENT, a BadRequest naming
 * each bad field, no HTTP status) when it has errors. Returns the result, with
 * its warnings.
 */
export function checkRequest<Desc extends DescMessage>(
  schema: Desc,
  request: MessageInitShape<Desc>,
): ValidationResult {
  const result = validate(schema, request);
  const [only, ...more] = result.errors;
  if (only !== undefined) {
    let text = `the request has ${result.errors.length} invalid fields`;
    if (more.length === 0) {
      text = only.field ? `${only.field}: ${only.description}` : only.description;
    }
    const badRequest = create(BadRequestSchema, { fieldViolations: [...result.errors] });
    const details = [anyPack(BadRequestSchema, badRequest)];
    const status = create(StatusSchema, { code: Code.INVALID_ARGUMENT, message: text, details });
    throw new ApiError({ status, httpStatus: undefined });
  }
  return result;
}

/** What validation checks of one field, read once from its options. */
interface FieldRule {
  readonly field: DescField;
  readonly outputOnly: boolean;
  readonly required: boolean;
  /** What is wrong with one value that is not the default; undefined: no value rules. */
  readonly valueCheck: ((value: unknown) => string | undefined) | undefined;
}

/** The rules of a message type: its fields worth looking at, required oneofs, groups. */
interface MessageRules {
  readonly fields: readonly FieldRule[];
  readonly requiredOneofs: readonly DescOneof[];
  readonly atLeastOneOf: readonly (readonly DescField[])[];
}

const rulesByType = new WeakMap<DescMessage, MessageRules>();

function rulesOf(desc: DescMessage): MessageRules {
  let rules = rulesByType.get(desc);
  if (rules === undefined) {
    const fields: FieldRule[] = [];
    for (const field of desc.fields) {
      const behaviors = getOption(field, field_behavior);
      const rule: FieldRule = {
        field,
        outputOnly: behaviors.includes(FieldBehavior.OUTPUT_ONLY),
        required: behaviors.includes(FieldBehavior.REQUIRED),
        valueCheck: valueCheckOf(field),
      };
      // A field with nothing to check and no message inside is never looked at.
      if (rule.outputOnly || rule.required || rule.valueCheck || messageOf(field)) {
        fields.push(rule);
      }
    }
    const byName = new Map(desc.fields.map((field) => [field.name, field]));
    rules = {
      fields,
      requiredOneofs: desc.oneofs.filter((oneof) => getOption(oneof, oneof_required)),
      atLeastOneOf: getOption(desc, message_rules).atLeastOneOf.map((group) =>
        group.fields.map((name) => {
          const field = byName.get(name);
          if (field === undefined) {
            throw new Error(`${desc.typeName}'s message_rules name no field ${name}`);
          }
          return field;
        }),
      ),
    };
    rulesByType.set(desc, rules);
  }
  return rules;
}

/** The message type of a field's values (a map's too), if they are messages. */
function messageOf(field: DescField): DescMessage | undefined {
  switch (field.fieldKind) {
    case "message":
      return field.message;
    case "list":
      return field.listKind === "message" ? field.message : undefined;
    case "map":
      return field.mapKind === "message" ? field.message : undefined;
    default:
      return undefined;
  }
}

/** The enum of a field's values, if they are enum values. */
function enumOf(field: DescField): DescEnum | undefined {
  if (field.fieldKind === "enum" || (field.fieldKind === "list" && field.listKind === "enum")) {
    return field.enum;
  }
  return undefined;
}

function valueCheckOf(field: DescField): ((value: unknown) => string | undefined) | undefined {
  const rules = getOption(field, field_rules);
  const checks: ((value: unknown) => string | undefined)[] = [];
  if (rules.pattern) {
    const pattern = pythonic(rules.pattern);
    const wanted = rules.patternDescription || `a match of ${rules.pattern}`;
    checks.push((value) =>
      pattern.test(String(value)) ? undefined : `"${String(value)}" is not ${wanted}`,
    );
  }
  if (rules.minimum !== undefined) {
    const minimum = rules.minimum;
    const wording = minimum === 0n ? "must not be negative" : `must be at least ${minimum}`;
    // A 64-bit integer is a bigint; other numbers (a fraction, NaN too) compare as numbers.
    checks.push((value) =>
      (typeof value === "bigint" ? value >= minimum : (value as number) >= Number(minimum))
        ? undefined
        : wording,
    );
  }
  const values = enumOf(field);
  if (values !== undefined) {
    const defined = new Set(values.values.map((value) => value.number));
    const names = values.values.map((value) => value.name).join(", ");
    checks.push((value) =>
      defined.has(value as number)
        ? undefined
        : `${String(value)} is not a value of ${values.name}: expected one of ${names}`,
    );
  }
  if (checks.length === 0) {
    return undefined;
  }
  return (value) => {
    for (const check of checks) {
      const problem = check(value);
      if (problem !== undefined) {
        return problem;
      }
    }
    return undefined;
  };
}

/**
 * A pattern as Python's `re` reads it: by code point (Unicode mode), `.` any
 * character but a newline (ECMAScript's also leaves out \r, U+2028 and
 * U+2029), `\d` any decimal digit (ECMAScript's only 0-9), a `$` the end or
 * before a final newline. The final `$` ends the string, as the Python
 * validator's `\Z` does.
 */
function pythonic(source: string): RegExp {
  let translated = "";
  let inClass = false;
  for (let index = 0; index < source.length; index += 1) {
    const character = source[index] as string;
    if (character === "\\") {
      const escaped = source[index + 1] ?? "";
      index += 1;
      translated += escaped === "d" ? "\\p{Nd}" : escaped === "D" ? "\\P{Nd}" : `\\${escaped}`;
    } else if (inClass) {
      inClass = character !== "]";
      translated += character;
    } else if (character === "[") {
      inClass = true;
      translated += character;
      if (source[index + 1] === "^") {
        index += 1;
        translated += "^";
      }
      if (source[index + 1] === "]") {
        index += 1; // a ] first in a class is one of its characters
        translated += "\\]";
      }
    } else if (character === ".") {
      translated += "[^\\n]";
    } else if (character === "$" && index < source.length - 1) {
      translated += "(?=\\n?$)"; // Python's $ (but the final one, its validator's \Z)
    } else {
      translated += character;
    }
  }
  return new RegExp(translated, "u");
}

function violation(field: string, description: string): BadRequest_FieldViolation {
  return create(BadRequest_FieldViolationSchema, { field, description });
}

function walk(
  message: ReflectMessage,
  path: string,
  errors: BadRequest_FieldViolation[],
  warnings: BadRequest_FieldViolation[],
): void {
  const rules = rulesOf(message.desc);
  for (const rule of rules.fields) {
    const field = rule.field;
    const fieldPath = memberPath(path, field.jsonName);
    const present = isPresent(message, field);
    if (rule.outputOnly && present) {
      warnings.push(violation(fieldPath, "output only: the value was ignored"));
      continue;
    }
    if (rule.required && !present) {
      errors.push(violation(fieldPath, REQUIRED));
      continue;
    }
    if (present && rule.valueCheck !== undefined) {
      valueViolations(message, field, rule.valueCheck, fieldPath, errors);
    }
    if (present && messageOf(field) !== undefined) {
      for (const [child, childPath] of children(message, field, fieldPath)) {
        walk(child, childPath, errors, warnings);
      }
    }
  }
  for (const oneof of rules.requiredOneofs) {
    if (message.oneofCase(oneof) === undefined) {
      const names = oneof.fields.map((field) => field.jsonName).join(", ");
      const first = oneof.fields[0]?.jsonName ?? oneof.name;
      errors.push(violation(memberPath(path, first), `${REQUIRED}: set exactly one of ${names}`));
    }
  }
  for (const group of rules.atLeastOneOf) {
    if (!group.some((field) => hasValue(message, field))) {
      const names = group.map((field) => field.jsonName).join(" or ");
      const first = group[0]?.jsonName ?? "";
      errors.push(violation(memberPath(path, first), `${REQUIRED}: set ${names}`));
    }
  }
}

/** Whether a field is set: items in a list or map, presence, or a value not the default. */
function isPresent(message: ReflectMessage, field: DescField): boolean {
  if (
    (field.fieldKind === "scalar" || field.fieldKind === "enum") &&
    field.oneof === undefined &&
    field.presence === FeatureSet_FieldPresence.IMPLICIT
  ) {
    return !isDefault(message.get(field)); // -0 too, which protobuf-es counts as set
  }
  return message.isSet(field);
}

/** Whether a field holds something other than its default (an empty `optional` does not). */
function hasValue(message: ReflectMessage, field: DescField): boolean {
  if (field.fieldKind !== "scalar" && field.fieldKind !== "enum") {
    return message.isSet(field); // a list or map with items, a message that is set
  }
  return !isDefault(message.get(field));
}

function isDefault(value: unknown): boolean {
  if (value instanceof Uint8Array) {
    return value.length === 0;
  }
  // 0 (and -0), 0n, "", false: Python's default values (== compares -0 equal to 0).
  return value === false || value === "" || value === 0 || value === 0n;
}

function valueViolations(
  message: ReflectMessage,
  field: DescField,
  check: (value: unknown) => string | undefined,
  fieldPath: string,
  errors: BadRequest_FieldViolation[],
): void {
  if (field.fieldKind === "list") {
    let index = 0;
    for (const item of message.get(field)) {
      const problem = check(item);
      if (problem !== undefined) {
        errors.push(violation(`${fieldPath}[${index}]`, problem));
      }
      index += 1;
    }
    return;
  }
  const value = message.get(field);
  if (!isDefault(value)) {
    const problem = check(value);
    if (problem !== undefined) {
      errors.push(violation(fieldPath, problem));
    }
  }
}

/** The messages a field holds, with their JSON paths: a map's by key, in Python's order. */
function* children(
  message: ReflectMessage,
  field: DescField,
  fieldPath: string,
): Generator<[ReflectMessage, string]> {
  if (field.fieldKind === "map") {
    const map = message.get(field);
    const keys = [...map.keys()].sort(byCodePoint);
    for (const key of keys) {
      yield [map.get(key) as ReflectMessage, `${fieldPath}["${String(key)}"]`]; // true, 42, "a"
    }
  } else if (field.fieldKind === "list") {
    let index = 0;
    for (const item of message.get(field)) {
      yield [item as ReflectMessage, `${fieldPath}[${index}]`];
      index += 1;
    }
  } else if (field.fieldKind === "message") {
    yield [message.get(field), fieldPath];
  }
}

/** Python's order of map keys: strings by code point (not by UTF-16 unit), numbers by value. */
function byCodePoint(left: unknown, right: unknown): number {
  if (typeof left !== "string" || typeof right !== "string") {
    const [a, b] = [left as number | bigint | boolean, right as number | bigint | boolean];
    return a < b ? -1 : a > b ? 1 : 0;
  }
  const a = [...left];
  const b = [...right];
  for (let index = 0; index < Math.min(a.length, b.length); index += 1) {
    const difference = (a[index]?.codePointAt(0) ?? 0) - (b[index]?.codePointAt(0) ?? 0);
    if (difference !== 0) {
      return difference;
    }
  }
  return a.length - b.length;
}
