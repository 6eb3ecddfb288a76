// The client and the admin client against the real local server, started by startEmulator.

import assert from "node:assert/strict";
import { after, before, beforeEach, test } from "node:test";

import { create, isMessage } from "@bufbuild/protobuf";
import {
  ApiError,
  Code,
  createClient,
  GetTreatmentsRequestSchema,
  GetTreatmentsResponseSchema,
  LogTreatmentInteractionRequest_InteractionType as Interaction,
  type AuxiaClient,
} from "@auxia/decision-api";
import { createAdminClient, Verdict_Outcome } from "@auxia/decision-api/emulator";
import { BadRequestSchema } from "@auxia/decision-api/rpc";
import { startEmulator, type Emulator } from "@auxia/decision-api/testing";

import { repoJson } from "./support.js";

let emulator: Emulator;
let client: AuxiaClient;

before(async () => {
  emulator = await startEmulator();
  client = emulator.client();
});
after(async () => {
  await emulator.stop();
});
beforeEach(async () => {
  await emulator.admin.reset();
});

const cart = (userId: string) => ({
  projectId: emulator.projectId,
  userId,
  surfaces: [{ surface: "CART_SCREEN" }],
});

test("the client has one lowerCamelCase method per RPC of the API's OpenAPI document", () => {
  const document = repoJson("generated/auxia/decision/model/openapi.json") as {
    paths: Record<string, unknown>;
  };
  const rpcs = Object.keys(document.paths).map((path) => path.replace("/v1/", ""));
  const expected = rpcs.map((name) => name[0]?.toLowerCase() + name.slice(1)).sort();
  const methods = Object.keys(client).filter((key) => key !== "baseUrl").sort();
  assert.deepEqual(methods, expected);
  assert.ok(methods.includes("getTreatments") && methods.includes("logTreatmentInteraction"));
});

test("GetTreatments from a plain object answers the response message", async () => {
  const answer = await client.getTreatments(cart("shopper-1"));
  assert.ok(isMessage(answer, GetTreatmentsResponseSchema));
  assert.equal(answer.userTreatments[0]?.treatmentId, "CART_REMINDER");
  const { decisions } = await emulator.admin.listDecisions({ userId: "shopper-1" });
  assert.equal(decisions[0]?.responseId, answer.responseId);
});

test("a request message is sent as it is", async () => {
  const request = create(GetTreatmentsRequestSchema, cart("shopper-2"));
  const answer = await client.getTreatments(request);
  assert.equal(answer.userTreatments.length, 1);
});

test("LogTreatmentInteraction is stored, and the admin API lists it", async () => {
  const served = (await client.getTreatments(cart("shopper-3"))).userTreatments[0];
  assert.ok(served);
  await client.logTreatmentInteraction({
    projectId: emulator.projectId,
    userId: "shopper-3",
    treatmentId: served.treatmentId,
    treatmentTrackingId: served.treatmentTrackingId,
    interactionType: Interaction.CLICKED,
    interactionTimeMicros: BigInt(Date.now()) * 1000n,
    surface: "CART_SCREEN",
  });
  const { interactions } = await emulator.admin.listInteractions({ userId: "shopper-3" });
  assert.equal(interactions.length, 1);
  assert.equal(interactions[0]?.interaction?.interactionType, Interaction.CLICKED);
  assert.equal(interactions[0]?.interaction?.treatmentTrackingId, served.treatmentTrackingId);
});

test("an invalid request: INVALID_ARGUMENT, HTTP 400, each bad field by its JSON path", async () => {
  const call = client.getTreatments({ projectId: emulator.projectId, userId: "", surfaces: [{ surface: "" }] });
  const error = await call.then(
    () => assert.fail("accepted"),
    (failure: unknown) => failure,
  );
  assert.ok(error instanceof ApiError);
  assert.equal(error.code, Code.INVALID_ARGUMENT);
  assert.equal(error.httpStatus, 400);
  const fields = error.detail(BadRequestSchema)?.fieldViolations.map((violation) => violation.field);
  assert.deepEqual(fields, ["userId", "surfaces[0].surface"]);
  assert.match(error.message, /^INVALID_ARGUMENT \(HTTP 400\): .*\n {2}userId: /);
});

test("a wrong key: UNAUTHENTICATED, and the key is in no message", async () => {
  const other = createClient({ baseUrl: emulator.baseUrl, apiKey: "WRONG-KEY-4242" });
  const error = await other.getTreatments(cart("shopper-4")).then(
    () => assert.fail("accepted"),
    (failure: unknown) => failure,
  );
  assert.ok(error instanceof ApiError);
  assert.equal(error.code, Code.UNAUTHENTICATED);
  assert.equal(error.httpStatus, 401);
  assert.doesNotMatch(error.message, /WRONG-KEY/);
});

test("a fault of two UNAVAILABLE answers is retried through (503 is retried for every method)", async () => {
  await emulator.admin.createFault({
    fault: { method: "GetTreatments", selection: { case: "count", value: 2 }, code: Code.UNAVAILABLE },
  });
  const answer = await emulator.client({ retry: { initialBackoffMs: 1 } }).getTreatments(cart("shopper-5"));
  assert.equal(answer.userTreatments.length, 1);
  const { decisions } = await emulator.admin.listDecisions({ userId: "shopper-5" });
  assert.equal(decisions.length, 1); // the two failed attempts decided nothing
});

test("a fault that outlasts the retries: the client's error says UNAVAILABLE, HTTP 503", async () => {
  await emulator.admin.createFault({
    fault: { method: "GetTreatments", selection: { case: "fraction", value: 1 }, code: Code.UNAVAILABLE },
  });
  const error = await emulator
    .client({ retry: { initialBackoffMs: 1 } })
    .getTreatments(cart("shopper-6"))
    .then(
      () => assert.fail("served"),
      (failure: unknown) => failure,
    );
  assert.ok(error instanceof ApiError);
  assert.equal(error.code, Code.UNAVAILABLE);
  assert.equal(error.httpStatus, 503);
  assert.equal((await emulator.admin.clearFaults()).clearedCount, 1);
});

test("the admin API explains a decision, and moves the clock", async () => {
  const { verdicts } = await emulator.admin.explainDecision({ request: cart("shopper-7") });
  assert.ok(verdicts.some((verdict) => verdict.outcome === Verdict_Outcome.SERVED));
  await emulator.admin.setClock({ change: { case: "freezeTime", value: { seconds: 1_900_000_000n } } });
  const moved = await emulator.admin.setClock({
    change: { case: "advance", value: { seconds: 86_400n } },
  });
  assert.equal(moved.clock?.now?.seconds, 1_900_086_400n);
  assert.equal(moved.clock?.frozen, true);
  assert.equal((await emulator.admin.getClock()).clock?.now?.seconds, 1_900_086_400n);
});

test("the admin API refuses an API key in place of the admin key", async () => {
  const admin = createAdminClient({ baseUrl: emulator.baseUrl, adminKey: emulator.apiKey });
  const error = await admin.listInteractions().then(
    () => assert.fail("accepted"),
    (failure: unknown) => failure,
  );
  assert.ok(error instanceof ApiError);
  assert.equal(error.code, Code.UNAUTHENTICATED);
  assert.ok(!error.message.includes(emulator.apiKey));
});
