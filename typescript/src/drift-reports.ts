// What a client does with the schema drift of its answers: counts, a warning once per place, a callback.

import type { Drift, DriftCallback } from "./drift.js";

/** A JSON path with `[*]` for every array index and map key: where drift is counted and warned of. */
export function placeOf(path: string): string {
  return path.replace(/\[(?:\d+|"(?:[^"\\]|\\.)*")\]/g, "[*]");
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
