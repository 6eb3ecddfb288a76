// Calls of a package's services over REST: routes from the descriptors, retries, typed errors.

import {
  create,
  fromJson,
  fromJsonString,
  getOption,
  isMessage,
  toJsonString,
  type DescField,
  type DescMessage,
  type DescService,
  type JsonValue,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import { anyPack } from "@bufbuild/protobuf/wkt";

import { findDrift, type Drift } from "./drift.js";
import type { DriftReports } from "./drift-reports.js";
import { ApiError, Code, errorFromHttpAnswer, redact } from "./errors.js";
import { BadRequestSchema } from "./gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "./gen/google/rpc/status_pb.js";
import { http } from "./gen/google/api/annotations_pb.js";
import { backoffMs, retryAfterMs, type RetryPolicy } from "./retry.js";
import { VERSION } from "./version.js";

/** Per-call options of every client method. */
export interface CallOptions {
  /** Aborts the call (and its retries); the call then fails with CANCELLED. */
  readonly signal?: AbortSignal;
  /** How long one attempt may take, answer included, in milliseconds; the client's by default. */
  readonly timeoutMs?: number;
}

/** One RPC and the HTTP rule that exposes it over REST. */
export interface Route {
  /** The RPC's name: `GetTreatments`. */
  readonly name: string;
  /** The client's method: `getTreatments`. */
  readonly localName: string;
  /** The HTTP method: `POST`. */
  readonly httpMethod: string;
  /** The URL path: `/v1/GetTreatments`. */
  readonly path: string;
  readonly input: DescMessage;
  readonly output: DescMessage;
}

const HTTP_METHODS = ["get", "put", "post", "delete", "patch"] as const;

/** Return the route of every RPC of the services that has a `google.api.http` rule. */
export function routesOf(services: readonly DescService[]): Route[] {
  const routes: Route[] = [];
  for (const service of services) {
    for (const method of service.methods) {
      const rule = getOption(method, http);
      const verb = HTTP_METHODS.find((name) => rule.pattern.case === name);
      if (verb === undefined || typeof rule.pattern.value !== "string") {
        continue;
      }
      routes.push({
        name: method.name,
        localName: method.localName,
        httpMethod: verb.toUpperCase(),
        path: rule.pattern.value,
        input: method.input,
        output: method.output,
      });
    }
  }
  return routes;
}

/** The request a method takes: its message, or the init type of `Inits` for its type name. */
type RequestOf<Input extends DescMessage, Inits> =
  MessageShape<Input>["$typeName"] extends keyof Inits
    ? Inits[MessageShape<Input>["$typeName"]]
    : MessageInitShape<Input>;

/** A method of a client: the request may be left out when none of its fields is required. */
type Method<Request, Response> = {} extends Request
  ? (request?: Request, options?: CallOptions) => Promise<Response>
  : (request: Request, options?: CallOptions) => Promise<Response>;

/** The methods of one service: one per RPC, lowerCamelCase. */
type MethodsOf<Service, Inits> =
  Service extends GenService<infer Methods extends GenServiceMethods>
    ? {
        [Name in keyof Methods]: Method<
          RequestOf<Methods[Name]["input"], Inits>,
          MessageShape<Methods[Name]["output"]>
        >;
      }
    : never;

type UnionToIntersection<U> = (U extends unknown ? (union: U) => void : never) extends (
  intersection: infer I,
) => void
  ? I
  : never;

/** A client of services: one method per RPC of each, taking its request and returning its response. */
export type ServicesClient<Services extends readonly unknown[], Inits> = UnionToIntersection<
  MethodsOf<Services[number], Inits>
>;

/** How a ServicesClient sends its calls. */
export interface Transport {
  /** Where the services are served, no trailing slash. */
  readonly baseUrl: string;
  /** Headers of every call (the key's among them). */
  readonly headers: Readonly<Record<string, string>>;
  /** Text no error message may hold (the keys). */
  readonly secrets: readonly string[];
  readonly fetch: typeof globalThis.fetch;
  readonly retry: RetryPolicy;
  readonly timeoutMs: number;
  /** Where schema drift in answers is reported; not looked for when undefined. */
  readonly drift?: DriftReports | undefined;
}

/** The user agent of every call. */
export const USER_AGENT = `auxia-decision-api-typescript/${VERSION}`;

/** What createServicesClient takes: where, which key in which header, and how to send. */
export interface ServicesClientOptions {
  /** Where the services are served (checked by checkedBaseUrl). */
  readonly baseUrl: string;
  /** The header of the key: `x-api-key`, `x-admin-key`. */
  readonly keyHeader: string;
  /** The key, sent in that header only and hidden from every error message. */
  readonly key: string;
  /** The fetch to send with; by default the global one. */
  readonly fetch?: typeof globalThis.fetch | undefined;
  readonly retry: RetryPolicy;
  /** How long one attempt may take, answer included, in milliseconds. */
  readonly timeoutMs: number;
  /** Where schema drift in answers is reported; not looked for when undefined. */
  readonly drift?: DriftReports | undefined;
}

/**
 * Return a client of the services' RPCs, one method per RPC, with the base URL
 * it sends to; throw when the base URL is not an http(s) one without
 * credentials, query or fragment.
 */
export function createServicesClient<Services extends readonly DescService[], Inits>(
  services: Services,
  options: ServicesClientOptions,
): ServicesClient<Services, Inits> & { readonly baseUrl: string } {
  const baseUrl = checkedBaseUrl(options.baseUrl);
  checkKey(options.key, `the ${options.keyHeader} key`);
  const transport: Transport = {
    baseUrl,
    headers: {
      [options.keyHeader]: options.key,
      "content-type": "application/json",
      accept: "application/json",
      "user-agent": USER_AGENT,
    },
    secrets: [options.key],
    fetch: options.fetch ?? globalThis.fetch.bind(globalThis),
    retry: options.retry,
    timeoutMs: options.timeoutMs,
    drift: options.drift,
  };
  const client: Record<string, unknown> = { baseUrl };
  for (const route of routesOf(services)) {
    client[route.localName] = (request: unknown, callOptions?: CallOptions) =>
      call(transport, route, request, callOptions ?? {});
  }
  return client as ServicesClient<Services, Inits> & { readonly baseUrl: string };
}

// Visible ASCII, with spaces inside but not at either end (a header's value is trimmed).
const SENDABLE_KEY = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

/**
 * Throw when a header cannot carry the key as it is (read with its newline,
 * say): in words that do not show it, where fetch's own error would.
 */
export function checkKey(key: string, what: string): void {
  if (!SENDABLE_KEY.test(key)) {
    throw new TypeError(
      `${what} holds a character a header cannot carry (a space at either end, a line ` +
        "break or another control character, or a non-ASCII one); the key is not shown: " +
        "check where it is read from",
    );
  }
}

/**
 * Return a base URL without its trailing slash; throw when it is not an http(s)
 * URL or carries credentials, a query or a fragment (a key belongs in a header).
 */
export function checkedBaseUrl(baseUrl: string): string {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new TypeError("baseUrl is not an absolute http(s) URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(`baseUrl must be an http or https URL, not ${url.protocol}`);
  }
  if (url.username || url.password || url.search || url.hash) {
    throw new TypeError(
      "baseUrl must not carry credentials, a query or a fragment: pass the key as apiKey",
    );
  }
  return baseUrl.replace(/\/+$/, "");
}

/** Return the environment variable's value, where there is an environment (Node, Deno, Bun). */
export function environment(name: string): string | undefined {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process
    ?.env;
  const value = env?.[name];
  return value === "" ? undefined : value;
}

async function call(
  transport: Transport,
  route: Route,
  request: unknown,
  options: CallOptions,
): Promise<unknown> {
  const body = requestJson(route, request);
  const url = transport.baseUrl + route.path;
  const { retry } = transport;
  for (let attempt = 1; ; attempt += 1) {
    const outcome = await attemptOnce(transport, route, url, body, options);
    if (outcome.kind === "answer") {
      const { response, text } = outcome;
      const delay = delayAfterStatus(retry, response, attempt);
      if (delay === undefined) {
        return result(transport, route, response, text);
      }
      await sleep(delay, options.signal);
      continue;
    }
    const safe = outcome.notSent || retry.safeToRepeat.includes(route.name);
    const mismatch = protocolMismatch(outcome.error) !== undefined;
    if (outcome.kind === "cancelled" || !safe || mismatch || attempt >= retry.maxAttempts) {
      throw failure(transport, route, outcome, attempt);
    }
    await sleep(backoffMs(retry, attempt), options.signal);
  }
}

/**
 * Return a request's proto3 JSON; throw a TypeError naming the field when it is
 * not the method's request (another message, a field it does not have, a
 * value of the wrong type): a mistake of the caller, never sent.
 */
function requestJson(route: Route, request: unknown): string {
  const wrong = (why: string): TypeError =>
    new TypeError(`${route.name} takes a ${route.input.typeName}: ${why}`);
  if (isMessage(request) && request.$typeName !== route.input.typeName) {
    throw wrong(`got a ${request.$typeName}`);
  }
  if (request !== undefined && (typeof request !== "object" || request === null)) {
    throw wrong(`got ${request === null ? "null" : typeof request}`);
  }
  const unknown = unknownField(route.input, request, "");
  if (unknown !== undefined) {
    throw wrong(`it has no field ${unknown}`);
  }
  try {
    const message = isMessage(request, route.input)
      ? request
      : create(route.input, request as MessageInitShape<DescMessage>);
    return toJsonString(route.input, message);
  } catch (error) {
    throw wrong(error instanceof Error ? error.message : String(error));
  }
}

/** The path of the first field of a plain init object that its message does not have, if any. */
function unknownField(schema: DescMessage, init: unknown, path: string): string | undefined {
  if (typeof init !== "object" || init === null || isMessage(init)) {
    return undefined;
  }
  const fields = new Map<string, DescField>(schema.fields.map((field) => [field.localName, field]));
  const oneofs = new Map(schema.oneofs.map((oneof) => [oneof.localName, oneof]));
  for (const [key, value] of Object.entries(init)) {
    const here = path ? `${path}.${key}` : key;
    const oneof = oneofs.get(key);
    if (oneof !== undefined) {
      const { case: chosen, value: inner } = (value ?? {}) as { case?: unknown; value?: unknown };
      const member = oneof.fields.find((field) => field.localName === chosen);
      if (chosen !== undefined && member === undefined) {
        return `${here}.case ${JSON.stringify(chosen)}`;
      }
      const found = member?.message && unknownField(member.message, inner, `${here}.value`);
      if (found) {
        return found;
      }
      continue;
    }
    const field = fields.get(key);
    if (field === undefined) {
      if (key === "$typeName" || key === "$unknown") {
        continue;
      }
      return here;
    }
    const found = unknownIn(field, value, here);
    if (found) {
      return found;
    }
  }
  return undefined;
}

/** The first unknown field inside a field's value: a message, each of a list's, each of a map's. */
function unknownIn(field: DescField, value: unknown, path: string): string | undefined {
  if (field.fieldKind === "message") {
    return unknownField(field.message, value, path);
  }
  if (field.fieldKind === "list" && field.listKind === "message" && Array.isArray(value)) {
    for (const [index, item] of value.entries()) {
      const found = unknownField(field.message, item, `${path}[${index}]`);
      if (found) {
        return found;
      }
    }
  }
  if (field.fieldKind === "map" && field.mapKind === "message" && typeof value === "object" && value) {
    for (const [key, item] of Object.entries(value)) {
      const found = unknownField(field.message, item, `${path}[${JSON.stringify(key)}]`);
      if (found) {
        return found;
      }
    }
  }
  return undefined;
}

/** What one attempt came to. */
type Outcome =
  | { kind: "answer"; response: Response; text: string }
  /** No answer, or an answer cut short (then `response` is its head). */
  | { kind: "failed"; error: unknown; notSent: boolean; timedOut: boolean; response?: Response }
  | { kind: "cancelled"; error: unknown; notSent: boolean };

async function attemptOnce(
  transport: Transport,
  route: Route,
  url: string,
  body: string,
  options: CallOptions,
): Promise<Outcome> {
  // One signal for the attempt: the caller's, or the attempt's timeout.
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new DOMException("the attempt timed out", "TimeoutError"));
  }, options.timeoutMs ?? transport.timeoutMs);
  const cancel = (): void => controller.abort(options.signal?.reason);
  options.signal?.addEventListener("abort", cancel, { once: true });
  if (options.signal?.aborted) {
    cancel();
  }
  let response: Response | undefined;
  try {
    response = await transport.fetch(url, {
      method: route.httpMethod,
      headers: transport.headers,
      body,
      signal: controller.signal,
      // A redirect is an answer, as in the Python client: following it would
      // send the key (a header of ours, which fetch does not drop) elsewhere.
      redirect: "manual",
    });
    return { kind: "answer", response, text: await response.text() };
  } catch (error) {
    if (options.signal?.aborted) {
      return { kind: "cancelled", error, notSent: false };
    }
    const sent = response !== undefined || !notSent(error);
    return { kind: "failed", error, notSent: !sent, timedOut, response };
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", cancel);
  }
}

/** Error codes of a connection that was never opened: the call was not sent. */
const NOT_SENT_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ENETUNREACH",
  "EHOSTUNREACH",
  "EADDRNOTAVAIL",
  "UND_ERR_CONNECT_TIMEOUT",
]);

/** Whether a fetch error says no connection was opened (Node's fetch names it in a cause). */
function notSent(error: unknown): boolean {
  const codes = errorCodes(error);
  return codes.length > 0 && codes.every((code) => NOT_SENT_CODES.has(code));
}

/** The `code`s of an error, its causes and the errors it aggregates. */
function errorCodes(error: unknown, depth = 0): string[] {
  if (typeof error !== "object" || error === null || depth > 5) {
    return [];
  }
  const { code, cause, errors } = error as { code?: unknown; cause?: unknown; errors?: unknown };
  const own = typeof code === "string" ? [code] : [];
  const nested = Array.isArray(errors) ? errors : [];
  return [
    ...own,
    ...errorCodes(cause, depth + 1),
    ...nested.flatMap((inner: unknown) => errorCodes(inner, depth + 1)),
  ];
}

// OpenSSL's and Node's codes of a failed handshake or a refused certificate.
const TLS_FAILURE = /^(ERR_SSL_|ERR_TLS_|EPROTO$)|CERT|SELF_SIGNED|UNABLE_TO_(VERIFY|GET_ISSUER)/;

/**
 * What a fetch error means when the other end speaks another protocol, else
 * undefined: TLS failed (`https://` to a plain-HTTP port, a certificate
 * refused), or what came back was not HTTP (`http://` to a TLS port). Such a
 * call is not retried: the Python client's words and rule.
 */
function protocolMismatch(error: unknown): string | undefined {
  const codes = errorCodes(error);
  if (codes.some((code) => TLS_FAILURE.test(code))) {
    return "TLS failed (is the server plain HTTP? then use an http:// URL)";
  }
  if (codes.some((code) => code.startsWith("HPE_"))) {
    return "the answer is not HTTP (is the server TLS? then use an https:// URL)";
  }
  return undefined;
}

/** The innermost message of an error and its causes: what went wrong on the wire. */
function describeError(error: unknown): string {
  let current: unknown = error;
  let text = String(error);
  for (let depth = 0; depth < 5 && typeof current === "object" && current !== null; depth += 1) {
    const { message, code, cause } = current as { message?: unknown; code?: unknown; cause?: unknown };
    if (typeof message === "string" && message) {
      text = typeof code === "string" && !message.includes(code) ? `${code}: ${message}` : message;
    }
    current = cause;
  }
  return text;
}

function failure(
  transport: Transport,
  route: Route,
  outcome: Exclude<Outcome, { kind: "answer" }>,
  attempt: number,
): ApiError {
  const tries = `after ${attempt} attempt${attempt === 1 ? "" : "s"}`;
  const why = redact(describeError(outcome.error), transport.secrets);
  if (outcome.kind === "cancelled") {
    return ApiError.of(Code.CANCELLED, `${route.name} was cancelled: ${why}`, undefined);
  }
  const code = outcome.timedOut ? Code.DEADLINE_EXCEEDED : Code.UNAVAILABLE;
  if (outcome.timedOut) {
    const message = `${route.name} failed ${tries}: no whole answer within the timeout`;
    return ApiError.of(code, message, outcome.response?.status);
  }
  if (outcome.response !== undefined) {
    const message = `${route.name} failed ${tries}: the answer was cut short: ${why}`;
    return ApiError.of(code, message, outcome.response.status);
  }
  const mismatch = protocolMismatch(outcome.error);
  if (mismatch !== undefined) {
    return ApiError.of(code, `${route.name} failed: ${mismatch}: ${why}`, undefined);
  }
  return ApiError.of(code, `${route.name} failed ${tries}: ${why}`, undefined);
}

function delayAfterStatus(
  retry: RetryPolicy,
  response: Response,
  attempt: number,
): number | undefined {
  if (!retry.retryHttpStatuses.includes(response.status) || attempt >= retry.maxAttempts) {
    return undefined;
  }
  const asked = retryAfterMs(response.headers.get("retry-after"));
  if (asked !== undefined) {
    return asked <= retry.maxRetryAfterMs ? asked : undefined;
  }
  return backoffMs(retry, attempt);
}

function result(transport: Transport, route: Route, response: Response, text: string): unknown {
  if (!response.ok) {
    const contentType = response.headers.get("content-type") ?? "";
    throw errorFromHttpAnswer(response.status, contentType, text, transport.secrets);
  }
  const reports = transport.drift;
  if (reports === undefined) {
    return decoded(transport, route, response, () =>
      fromJsonString(route.output, text, { ignoreUnknownFields: true }),
    );
  }
  // Parsed once, read leniently, and walked for what the schema does not know.
  let document: unknown = NOT_JSON;
  try {
    document = JSON.parse(text);
  } catch {
    // fromJsonString words the error
  }
  const message = decoded(transport, route, response, () => {
    try {
      return document === NOT_JSON
        ? fromJsonString(route.output, text, { ignoreUnknownFields: true })
        : fromJson(route.output, document as JsonValue, { ignoreUnknownFields: true });
    } catch (error) {
      // Unreadable: counted and passed on as drift too, but no warning: the error says it.
      if (document !== NOT_JSON) {
        reports.report(route.name, findDrift(document, route.output), false);
      }
      throw error;
    }
  });
  const drifts = findDrift(document, route.output);
  if (drifts.length > 0) {
    reports.report(route.name, drifts);
    if (reports.strict) {
      throw driftError(route, drifts, response.status);
    }
  }
  return message;
}

const NOT_JSON = Symbol("not JSON");

/** Return what `decode` returns, or throw the ApiError of an answer that is not the output. */
function decoded(
  transport: Transport,
  route: Route,
  response: Response,
  decode: () => unknown,
): unknown {
  try {
    return decode();
  } catch (error) {
    const why = redact(error instanceof Error ? error.message : String(error), transport.secrets);
    const message = `the server's answer to ${route.name} is not a valid ${route.output.name}: ${why}`;
    throw ApiError.of(Code.UNKNOWN, message, response.status);
  }
}

/** The error of an answer with drift, under `strictResponses`: UNKNOWN, a BadRequest of each path. */
function driftError(route: Route, drifts: readonly Drift[], httpStatus: number): ApiError {
  const [first] = drifts as [Drift, ...Drift[]];
  const more = drifts.length > 1 ? ` (and ${drifts.length - 1} more)` : "";
  const message =
    `the server's answer to ${route.name} holds what the schema does not know: ` +
    `${first.kind} at ${first.path || "the root"}: ${first.detail}${more}`;
  const fieldViolations = drifts.map((drift) => ({
    field: drift.path,
    description: `${drift.kind}: ${drift.detail}`,
  }));
  const details = [anyPack(BadRequestSchema, create(BadRequestSchema, { fieldViolations }))];
  return new ApiError({ status: create(StatusSchema, { code: Code.UNKNOWN, message, details }), httpStatus });
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(ApiError.of(Code.CANCELLED, "the call was cancelled while waiting to retry", undefined));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(ApiError.of(Code.CANCELLED, "the call was cancelled while waiting to retry", undefined));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
