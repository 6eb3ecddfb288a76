// createClient: the Auxia API's client, one method per RPC of its services.

import { services, type RequestInits } from "./gen/auxia/decision/model/services.js";
import type { DriftCallback } from "./drift.js";
import { DriftReports } from "./drift-reports.js";
import { createServicesClient, environment, type ServicesClient } from "./rest.js";
import { DEFAULT_RETRY, type RetryPolicy } from "./retry.js";

/** Where the Auxia API is served. */
export const DEFAULT_BASE_URL = "https://apis.auxia.io";
/** The environment variable of the API key. */
export const API_KEY_ENV = "AUXIA_API_KEY";
/** The environment variable of the base URL. */
export const BASE_URL_ENV = "AUXIA_BASE_URL";
/** How long one attempt of a call may take by default, in milliseconds. */
export const DEFAULT_TIMEOUT_MS = 10_000;

/** What createClient takes. */
export interface ClientOptions {
  /** Where the API is served; by default `AUXIA_BASE_URL`, else https://apis.auxia.io. */
  readonly baseUrl?: string;
  /** The API key, sent only in the `x-api-key` header; by default `AUXIA_API_KEY`. */
  readonly apiKey?: string;
  /** The fetch to send with; by default the global one. */
  readonly fetch?: typeof globalThis.fetch;
  /** When to send a call again; what is given replaces the default's (DEFAULT_RETRY) fields. */
  readonly retry?: Partial<RetryPolicy>;
  /** How long one attempt may take, answer included, in milliseconds (10 s). */
  readonly timeoutMs?: number;
  /**
   * Called with the RPC's name and a Drift (its JSON path, kind and detail) for
   * every field, enum value or JSON type an answer holds that the schema does
   * not know; what it throws, the call rejects with.
   */
  readonly onDrift?: DriftCallback;
  /**
   * Make such drift an ApiError (UNKNOWN, with a BadRequest naming each path)
   * rather than a SchemaDriftWarning: for consumers' own tests.
   */
  readonly strictResponses?: boolean;
}

/**
 * A client of the Auxia API: one method per RPC (`getTreatments`,
 * `logTreatmentInteraction`, ...), each taking its request (a message, or a
 * plain object of its fields with the REQUIRED ones set) and resolving to
 * the response message, or rejecting with an ApiError.
 */
export type AuxiaClient = ServicesClient<typeof services, RequestInits> & {
  /** Where the client sends its calls. */
  readonly baseUrl: string;
  /**
   * How many answers held schema drift, by RPC name, then by place (the JSON
   * path with `[*]` for every array index and map key): live, read-only.
   */
  readonly drift: ReadonlyMap<string, ReadonlyMap<string, number>>;
};

/**
 * Return a client of the Auxia API.
 *
 * An answer holding what the schema does not know (a field, an enum value or
 * a JSON type: the API is newer than the schema) is read as ever, the
 * unknown dropped, and reported: a process warning of type
 * `SchemaDriftWarning` once per RPC and place, `onDrift`, and the counts of
 * `drift`.
 *
 * Throws when there is no API key (neither `apiKey` nor `AUXIA_API_KEY`), when
 * the key holds a character no header can carry (the key is not shown), or
 * the base URL is not an http(s) URL without credentials, query or fragment.
 */
export function createClient(options: ClientOptions = {}): AuxiaClient {
  const apiKey = options.apiKey ?? environment(API_KEY_ENV);
  if (!apiKey) {
    throw new Error(`no API key: pass apiKey or set the ${API_KEY_ENV} environment variable`);
  }
  const drift = new DriftReports(options.onDrift, options.strictResponses ?? false);
  const client = createServicesClient<typeof services, RequestInits>(services, {
    baseUrl: options.baseUrl ?? environment(BASE_URL_ENV) ?? DEFAULT_BASE_URL,
    keyHeader: "x-api-key",
    key: apiKey,
    fetch: options.fetch,
    retry: { ...DEFAULT_RETRY, ...options.retry },
    timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    drift,
  });
  // Not enumerable: the client's enumerable keys are its methods and baseUrl.
  Object.defineProperty(client, "drift", { value: drift.counts, enumerable: false });
  return client as AuxiaClient;
}
