// @auxia/decision-api: the Auxia API's messages (io.auxia.decision.model), its client and errors.
//
// The emulator admin API is in "@auxia/decision-api/emulator", the harness
// that starts the local server in tests in "@auxia/decision-api/testing",
// google.rpc's Status and error details in "@auxia/decision-api/rpc".

export * from "./gen/auxia/decision/model/index.js";
export {
  API_KEY_ENV,
  BASE_URL_ENV,
  DEFAULT_BASE_URL,
  DEFAULT_TIMEOUT_MS,
  createClient,
  type AuxiaClient,
  type ClientOptions,
} from "./client.js";
export { findDrift, type Drift, type DriftCallback } from "./drift.js";
export { ApiError, Code, codeName, type ApiErrorInit } from "./errors.js";
export type { CallOptions } from "./rest.js";
export { DEFAULT_RETRY, type RetryPolicy } from "./retry.js";
export { VERSION } from "./version.js";
export { checkRequest, validate, type ValidationResult } from "./validation.js";
