// When a client sends a call again, and how long it waits first: the Python client's policy.

/**
 * When and how long a client waits before it sends a call again.
 *
 * - An answer whose HTTP status is in `retryHttpStatuses` (429, 503) is
 *   retried for every method: the server did not act on the call. A
 *   `Retry-After` header (seconds or an HTTP date) is honoured; when it asks
 *   for more than `maxRetryAfterMs` the error is returned instead.
 * - A connection that could not be opened is retried for every method:
 *   nothing was sent.
 * - A timeout, a broken connection or an answer cut short after the call was
 *   sent is retried only for the methods in `safeToRepeat` (RPC names),
 *   since the server may have acted on it: GetDataFields, UpdateTreatment,
 *   GetTreatment and GetAllTreatments by default. LogTreatmentInteraction is
 *   not (a repeat logs twice), nor InsertTreatment (a second treatment), nor
 *   GetTreatments (what it returns counts as SENT).
 *
 * Waits grow exponentially from `initialBackoffMs` by `multiplier` up to
 * `maxBackoffMs`, with full jitter. `maxAttempts` counts the first attempt;
 * 1 disables retries.
 */
export interface RetryPolicy {
  readonly maxAttempts: number;
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly multiplier: number;
  readonly maxRetryAfterMs: number;
  readonly retryHttpStatuses: readonly number[];
  readonly safeToRepeat: readonly string[];
}

/** The policy of a client given none: up to 4 attempts. */
export const DEFAULT_RETRY: RetryPolicy = Object.freeze({
  maxAttempts: 4,
  initialBackoffMs: 200,
  maxBackoffMs: 5000,
  multiplier: 2,
  maxRetryAfterMs: 30_000,
  retryHttpStatuses: Object.freeze([429, 503]),
  safeToRepeat: Object.freeze(["GetDataFields", "UpdateTreatment", "GetTreatment", "GetAllTreatments"]),
});

/** Return a jittered wait in milliseconds before attempt `attempt + 1`. */
export function backoffMs(policy: RetryPolicy, attempt: number): number {
  const ceiling = Math.min(
    policy.maxBackoffMs,
    policy.initialBackoffMs * policy.multiplier ** (attempt - 1),
  );
  return Math.random() * ceiling;
}

/** Return the wait a `Retry-After` header asks for (seconds or an HTTP date) in ms, or undefined. */
export function retryAfterMs(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null) {
    return undefined;
  }
  const text = value.trim();
  if (/^\d+$/.test(text)) {
    return Number(text) * 1000;
  }
  // An HTTP date (RFC 9110: "Sun, 06 Nov 1994 08:49:37 GMT", or the obsolete
  // "Sunday, 06-Nov-94 08:49:37 GMT"); Date.parse alone reads "1.5" as a date.
  if (!/^[A-Za-z]{3,9}, [\w -]+ \d{2}:\d{2}:\d{2} GMT$/.test(text)) {
    return undefined;
  }
  const moment = Date.parse(text);
  if (Number.isNaN(moment)) {
    return undefined;
  }
  return Math.max(0, moment - now);
}
