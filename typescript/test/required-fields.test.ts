// REQUIRED fields are required at compile time: each @ts-expect-error below must be an error.
//
// tsc compiles this file with the tests (build.mjs): a line that compiled
// without error would fail the build ("Unused '@ts-expect-error' directive").
// The calls are in functions that never run; the one test checks they exist.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  LogTreatmentInteractionRequest_InteractionType as Interaction,
  type AuxiaClient,
  type GetTreatmentsRequestInit,
} from "@auxia/decision-api";
import type { AdminClient } from "@auxia/decision-api/emulator";
import { Code } from "@auxia/decision-api/rpc";

export async function requests(client: AuxiaClient): Promise<string | undefined> {
  // Every REQUIRED field set: compiles, and the answer is the response message.
  const answer = await client.getTreatments({
    projectId: "P",
    userId: "u",
    surfaces: [{ surface: "CART_SCREEN" }],
    contextualAttributes: [{ key: "tier", value: { case: "stringValue", value: "gold" } }],
  });
  const treatmentId: string | undefined = answer.userTreatments[0]?.treatmentId;

  // @ts-expect-error userId is REQUIRED
  await client.getTreatments({ projectId: "P", surfaces: [{ surface: "CART_SCREEN" }] });
  // @ts-expect-error surfaces[].surface is REQUIRED, at any depth
  await client.getTreatments({ projectId: "P", userId: "u", surfaces: [{ maximumTreatmentCount: 2n }] });
  // @ts-expect-error a contextual attribute's value is a required oneof
  await client.getTreatments({ projectId: "P", userId: "u", surfaces: [], contextualAttributes: [{ key: "k" }] });
  // @ts-expect-error a field the message does not have
  await client.getTreatments({ projectId: "P", userId: "u", surfaces: [], colour: "red" });
  // @ts-expect-error the request is required when some of its fields are
  await client.getTreatments();
  // @ts-expect-error interactionTimeMicros is an int64: a bigint
  await client.logTreatmentInteraction({ projectId: "P", treatmentTrackingId: "T", interactionType: Interaction.VIEWED, interactionTimeMicros: 1 });
  await client.logTreatmentInteraction({
    projectId: "P",
    treatmentTrackingId: "T",
    interactionType: Interaction.VIEWED,
    interactionTimeMicros: 1n,
  });
  return treatmentId;
}

export async function admin(client: AdminClient): Promise<void> {
  await client.reset(); // no field of ResetRequest is required
  await client.createFault({ fault: { method: "GetTreatments", selection: { case: "count", value: 1 }, code: Code.UNAVAILABLE } });
  // @ts-expect-error a fault's method is REQUIRED
  await client.createFault({ fault: { selection: { case: "count", value: 1 } } });
  // @ts-expect-error a fault's selection is a required oneof
  await client.createFault({ fault: { method: "GetTreatments" } });
}

export const init: GetTreatmentsRequestInit = { projectId: "P", userId: "u", surfaces: [] };

test("the compile-time checks of this file were compiled", () => {
  assert.equal(typeof requests, "function");
  assert.equal(typeof admin, "function");
});
