// The error of every failed call: a google.rpc.Status, its typed details and the HTTP status.

import {
  create,
  createRegistry,
  fromJsonString,
  type DescMessage,
  type Message,
  type MessageShape,
} from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";

import { Code } from "./gen/google/rpc/code_pb.js";
import {
  BadRequestSchema,
  RetryInfoSchema,
  file_google_rpc_error_details,
  type BadRequest_FieldViolation,
} from "./gen/google/rpc/error_details_pb.js";
import { StatusSchema, type Status } from "./gen/google/rpc/status_pb.js";

export { Code };

/** The detail types of google/rpc/error_details.proto: what ApiError unpacks. */
const DETAILS = createRegistry(file_google_rpc_error_details);

/** How many characters of a body that is not a Status an error quotes. */
const MAX_BODY_EXCERPT = 200;

/**
 * The code an HTTP status stands for when the answer carries no google.rpc.Status
 * (a proxy's error page), as the Python client reads it.
 */
const CODE_BY_HTTP_STATUS: ReadonlyMap<number, Code> = new Map([
  [400, Code.INVALID_ARGUMENT],
  [401, Code.UNAUTHENTICATED],
  [403, Code.PERMISSION_DENIED],
  [404, Code.NOT_FOUND],
  [405, Code.UNIMPLEMENTED],
  [409, Code.ABORTED],
  [412, Code.FAILED_PRECONDITION],
  [413, Code.INVALID_ARGUMENT],
  [415, Code.INVALID_ARGUMENT],
  [429, Code.RESOURCE_EXHAUSTED],
  [499, Code.CANCELLED],
  [501, Code.UNIMPLEMENTED],
  [502, Code.UNAVAILABLE],
  [503, Code.UNAVAILABLE],
  [504, Code.DEADLINE_EXCEEDED],
]);

/** Return the status code an HTTP status without a Status body stands for. */
export function codeForHttpStatus(httpStatus: number): Code {
  const known = CODE_BY_HTTP_STATUS.get(httpStatus);
  if (known !== undefined) {
    return known;
  }
  if (httpStatus >= 200 && httpStatus < 300) {
    return Code.OK;
  }
  if (httpStatus >= 400 && httpStatus < 500) {
    return Code.FAILED_PRECONDITION;
  }
  return Code.UNKNOWN;
}

/** Every entry of the table codeForHttpStatus reads, for the tests that compare it with Python's. */
export function httpStatusCodeTable(): ReadonlyMap<number, Code> {
  return CODE_BY_HTTP_STATUS;
}

/** Return a code's name (`INVALID_ARGUMENT`), or its number for a code google.rpc.Code lacks. */
export function codeName(code: Code): string {
  return Code[code] ?? String(code);
}

/** What ApiError's constructor takes. */
export interface ApiErrorInit {
  /** The google.rpc.Status of the error, details packed in `Any`s. */
  readonly status: Status;
  /** The HTTP status of the answer that carried it; undefined when no answer came. */
  readonly httpStatus: number | undefined;
}

/**
 * A failed call of the Auxia API (or of the emulator admin API).
 *
 * `status` is the google.rpc.Status the server answered (or one the client
 * made up when the answer was not one, the connection failed or the answer
 * was cut short); `details` its details unpacked into typed messages
 * (`google.rpc.BadRequest`, `RetryInfo`, ...) where their types are known;
 * `httpStatus` the HTTP status of the answer, undefined when none came.
 * `message` names the code, the HTTP status and every field violation, one a
 * line. It never holds an API key.
 */
export class ApiError extends Error {
  override readonly name = "ApiError";
  /** The google.rpc.Status of the error. */
  readonly status: Status;
  /** The HTTP status of the answer that carried the error; undefined when no answer came. */
  readonly httpStatus: number | undefined;
  /** The status's details, unpacked where their type is a google.rpc one (else the `Any`). */
  readonly details: readonly Message[];

  constructor(init: ApiErrorInit) {
    const details = init.status.details.map((packed) => anyUnpack(packed, DETAILS) ?? packed);
    super(describe(init.status, init.httpStatus, details));
    this.status = init.status;
    this.httpStatus = init.httpStatus;
    this.details = details;
  }

  /** Return an error with this code and message, no details. */
  static of(code: Code, message: string, httpStatus: number | undefined): ApiError {
    return new ApiError({ status: create(StatusSchema, { code, message }), httpStatus });
  }

  /** The status code (google.rpc.Code). */
  get code(): Code {
    return this.status.code;
  }

  /** The status code's name: `INVALID_ARGUMENT`. */
  get codeName(): string {
    return codeName(this.status.code);
  }

  /** Return the first detail of a type (`BadRequestSchema`, ...), or undefined. */
  detail<Desc extends DescMessage>(schema: Desc): MessageShape<Desc> | undefined {
    return this.details.find(
      (detail): detail is MessageShape<Desc> => detail.$typeName === schema.typeName,
    );
  }

  /** The field violations of every BadRequest detail: each bad field by its JSON path. */
  get fieldViolations(): BadRequest_FieldViolation[] {
    return violationsOf(this.details);
  }

  /** How many milliseconds a RetryInfo detail asks to wait before trying again, if one does. */
  get retryDelayMs(): number | undefined {
    const delay = this.detail(RetryInfoSchema)?.retryDelay;
    if (delay === undefined) {
      return undefined;
    }
    return Number(delay.seconds) * 1000 + delay.nanos / 1e6;
  }
}

/** Return the field violations of every BadRequest among details. */
function violationsOf(details: readonly Message[]): BadRequest_FieldViolation[] {
  return details
    .filter((detail) => detail.$typeName === BadRequestSchema.typeName)
    .flatMap((detail) => (detail as MessageShape<typeof BadRequestSchema>).fieldViolations);
}

/** Return the one line and the violations a failed call's message says. */
function describe(status: Status, httpStatus: number | undefined, details: Message[]): string {
  const where = httpStatus === undefined ? " (no HTTP answer)" : ` (HTTP ${httpStatus})`;
  const first = `${codeName(status.code)}${where}: ${status.message}`;
  const violations = violationsOf(details).map((violation) =>
      violation.field ? `${violation.field}: ${violation.description}` : violation.description,
    );
  if (violations.length === 1 && violations[0] === status.message) {
    return first; // the message is the one violation: say it once
  }
  return [first, ...violations.map((line) => `  ${line}`)].join("\n");
}

/**
 * Return the error an HTTP error answer describes.
 *
 * A google.rpc.Status JSON body is read, details included; any other body (a
 * proxy's HTML page, plain text, a truncated Status) still gives an error
 * whose code follows the HTTP status and whose message quotes the start of
 * the body, with every secret in it hidden.
 */
export function errorFromHttpAnswer(
  httpStatus: number,
  contentType: string,
  body: string,
  secrets: readonly string[],
): ApiError {
  const status = statusFromJson(body);
  if (status !== undefined && status.code !== Code.OK) {
    status.message = redact(status.message, secrets);
    return new ApiError({ status, httpStatus });
  }
  const excerpt = redact(body.trim().split(/\s+/).join(" "), secrets).slice(0, MAX_BODY_EXCERPT);
  const kind = contentType.split(";")[0]?.trim() || "no content type";
  let message = `HTTP ${httpStatus} with a non-Status body (${kind})`;
  if (excerpt) {
    message += `: ${excerpt}`;
  }
  return ApiError.of(codeForHttpStatus(httpStatus), message, httpStatus);
}

/** Read a google.rpc.Status from JSON; undefined when the body is not one. */
function statusFromJson(body: string): Status | undefined {
  let document: unknown;
  try {
    document = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof document !== "object" || document === null || Array.isArray(document)) {
    return undefined;
  }
  const { code, message } = document as { code?: unknown; message?: unknown };
  if (typeof code !== "number" || !Number.isInteger(code)) {
    return undefined;
  }
  try {
    return fromJsonString(StatusSchema, body, { ignoreUnknownFields: true, registry: DETAILS });
  } catch {
    // Keep what can be read when a detail has an unknown type.
    return create(StatusSchema, { code, message: typeof message === "string" ? message : "" });
  }
}

/** Return text with every secret in it replaced by `[redacted]`. */
export function redact(text: string, secrets: readonly string[]): string {
  let result = text;
  for (const secret of secrets) {
    if (secret) {
      result = result.split(secret).join("[redacted]");
    }
  }
  return result;
}
