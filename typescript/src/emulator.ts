// The local server's emulator admin API over REST: its messages and a typed client.

import type {
  JournalEntry,
  ListDecisionsRequest,
  ListInteractionsRequest,
  ListJournalRequest,
  LoggedInteraction,
  ServedDecision,
} from "./gen/auxia/decision/emulator/v1/emulator_pb.js";
import type {
  ListDecisionsRequestInit,
  ListInteractionsRequestInit,
  ListJournalRequestInit,
} from "./gen/auxia/decision/emulator/v1/emulator_init.js";
import { services, type RequestInits } from "./gen/auxia/decision/emulator/v1/services.js";
import { BASE_URL_ENV, DEFAULT_TIMEOUT_MS } from "./client.js";
import { createServicesClient, environment, type ServicesClient } from "./rest.js";
import { DEFAULT_RETRY } from "./retry.js";

export * from "./gen/auxia/decision/emulator/v1/index.js";

/** The environment variable of the emulator's admin key. */
export const ADMIN_KEY_ENV = "AUXIA_EMULATOR_ADMIN_KEY";

/** What createAdminClient takes. */
export interface AdminClientOptions {
  /** Where the local server serves REST; by default `AUXIA_BASE_URL`. */
  readonly baseUrl?: string;
  /** An admin key of the server's seed, sent in `x-admin-key`; by default `AUXIA_EMULATOR_ADMIN_KEY`. */
  readonly adminKey?: string;
  /** The fetch to send with; by default the global one. */
  readonly fetch?: typeof globalThis.fetch;
  /** How long one attempt may take, answer included, in milliseconds (10 s). */
  readonly timeoutMs?: number;
}

/**
 * A client of the local server's emulator admin API (`/emulator/v1/...`):
 * one method per RPC of io.auxia.decision.emulator.v1.EmulatorService
 * (`reset`, `listInteractions`, `listDecisions`, `explainDecision`,
 * `getClock`, `setClock`, `createFault`, `listFaults`, `clearFaults`, ...);
 * a list RPC answers one page, and `interactions`, `decisions` and
 * `journal` follow every page of theirs, as the Python and Java clients do.
 */
export type AdminClient = ServicesClient<typeof services, RequestInits> & {
  /** Where the client sends its calls. */
  readonly baseUrl: string;
  /** The logged interactions matching the filters, oldest first (or `newestFirst`): every page of listInteractions. */
  interactions(request?: Filters<ListInteractionsRequestInit, ListInteractionsRequest>): Promise<LoggedInteraction[]>;
  /** The decisions that served treatments matching the filters, oldest first (or `newestFirst`): every page of listDecisions. */
  decisions(request?: Filters<ListDecisionsRequestInit, ListDecisionsRequest>): Promise<ServedDecision[]>;
  /** The calls the server answered (its request journal): every page of listJournal, 1,000 a page. */
  journal(request?: Filters<ListJournalRequestInit, ListJournalRequest>): Promise<JournalEntry[]>;
};

/** A list request's fields, as a plain object, without the page token the helper sets. */
type Filters<Init, Message> = Omit<Exclude<Init, Message>, "pageToken">;

/** Call a list RPC page after page, from the first; return the items of every page. */
async function everyPage<Page extends { readonly nextPageToken: string }, Item>(
  page: (pageToken: string) => Promise<Page>,
  items: (page: Page) => readonly Item[],
): Promise<Item[]> {
  const found: Item[] = [];
  let pageToken = "";
  do {
    const answered = await page(pageToken);
    found.push(...items(answered));
    pageToken = answered.nextPageToken;
  } while (pageToken);
  return found;
}

/**
 * Return a client of a local server's emulator admin API.
 *
 * Throws when there is no admin key or base URL (neither given nor in the
 * environment). Calls that fail for a moment are retried only when nothing
 * was sent, or the server answered 429 or 503.
 */
export function createAdminClient(options: AdminClientOptions = {}): AdminClient {
  const adminKey = options.adminKey ?? environment(ADMIN_KEY_ENV);
  if (!adminKey) {
    throw new Error(
      `no admin key: pass adminKey or set ${ADMIN_KEY_ENV} (the seed's adminKeys; an API key is refused)`,
    );
  }
  const where = options.baseUrl ?? environment(BASE_URL_ENV);
  if (!where) {
    throw new Error(`no base URL: pass baseUrl or set ${BASE_URL_ENV} to the local server's`);
  }
  const client = createServicesClient<typeof services, RequestInits>(services, {
    baseUrl: where,
    keyHeader: "x-admin-key",
    key: adminKey,
    fetch: options.fetch,
    retry: { ...DEFAULT_RETRY, safeToRepeat: [] },
    timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
  });
  return Object.assign(client, {
    interactions: (request: Filters<ListInteractionsRequestInit, ListInteractionsRequest> = {}) =>
      everyPage(
        (pageToken) => client.listInteractions({ ...request, pageToken }),
        (page) => page.interactions,
      ),
    decisions: (request: Filters<ListDecisionsRequestInit, ListDecisionsRequest> = {}) =>
      everyPage(
        (pageToken) => client.listDecisions({ ...request, pageToken }),
        (page) => page.decisions,
      ),
    // Pages of 1,000: each ListJournal call is journaled too, so pages of one would never end.
    journal: (request: Filters<ListJournalRequestInit, ListJournalRequest> = {}) =>
      everyPage(
        (pageToken) => client.listJournal({ ...request, pageSize: 1000, pageToken }),
        (page) => page.entries,
      ),
  });
}
