// Schema drift reports of the client, against a scripted HTTP server on 127.0.0.1.

import assert from "node:assert/strict";
import { after, afterEach, before, beforeEach, test } from "node:test";

import { fromJsonString } from "@bufbuild/protobuf";
import {
  ApiError,
  Code,
  createClient,
  DataFieldParamsSchema,
  findDrift,
  GetTreatmentResponseSchema,
  GetTreatmentsResponseSchema,
  type Drift,
} from "@auxia/decision-api";

import { json, repoJson, scriptedServer, type ScriptedServer } from "./support.js";

const KEY = "SECRET-KEY-drift-0123";
const GET_TREATMENTS = { projectId: "P", userId: "u", surfaces: [{ surface: "HOME" }] };
const GET_TREATMENT = { projectId: "P", treatmentId: "t-1" };
const TREATMENTS = {
  responseId: "r-1",
  userTreatments: [
    { treatmentId: "t-1", rank: "1", surface: "home", newField: { a: 1 } },
    { treatmentId: "t-2", rank: "2", surface: "home", newField: { a: 2 } },
  ],
};
const TREATMENT = {
  treatment: {
    treatmentId: "t-1",
    name: "Spring sale",
    status: "BRAND_NEW_STATUS",
    versions: [{ status: "LIVE" }],
  },
};
const KNOWN = { treatment: { treatmentId: "t-1", status: "LIVE", versions: [{ status: 3 }] } };

let server: ScriptedServer;
let warned: Error[] = [];
const onWarning = (warning: Error): void => {
  if (warning.name === "SchemaDriftWarning") warned.push(warning);
};

before(async () => {
  server = await scriptedServer();
  process.on("warning", onWarning);
});
after(async () => {
  process.off("warning", onWarning);
  await server.close();
});
beforeEach(() => {
  server.clear();
  warned = [];
});
afterEach(async () => {
  await settled();
});

/** Let the process warnings emitted so far arrive (they come on the next tick). */
function settled(): Promise<void> {
  return new Promise((done) => setImmediate(done));
}

/** What a call rejects with (the test fails if it resolves). */
function rejection(call: Promise<unknown>): Promise<unknown> {
  return call.then(
    () => assert.fail("resolved"),
    (caught: unknown) => caught,
  );
}

function client(options: Parameters<typeof createClient>[0] = {}) {
  return createClient({ baseUrl: server.url, apiKey: KEY, retry: { maxAttempts: 1 }, ...options });
}

test("drift warns once per method and place, and the result is unchanged", async () => {
  server.script(json(200, TREATMENTS));
  const auxia = client();
  const results = [];
  for (let call = 0; call < 3; call += 1) {
    results.push(await auxia.getTreatments(GET_TREATMENTS));
  }
  await settled();
  assert.deepEqual(
    warned.map((warning) => warning.message),
    [
      "GetTreatments answered what the schema does not know (unknown_field at " +
        'userTreatments[0].newField): "newField" is not a field of UserTreatment; ' +
        "this package may be older than the API",
    ],
  );
  const lenient = fromJsonString(GetTreatmentsResponseSchema, JSON.stringify(TREATMENTS), {
    ignoreUnknownFields: true,
  });
  for (const result of results) {
    assert.deepEqual(result, lenient);
  }
  assert.deepEqual(auxia.drift.get("GetTreatments"), new Map([["userTreatments[*].newField", 3]]));
});

test("an unknown enum value reads as unset and is reported with its value", async () => {
  server.script(json(200, TREATMENT));
  const auxia = client();
  const answer = await auxia.getTreatment(GET_TREATMENT);
  await settled();
  assert.equal(answer.treatment?.status, 0);
  assert.equal(warned.length, 1);
  assert.match(warned[0]?.message ?? "", /treatment\.status="BRAND_NEW_STATUS" is not a value of Status/);
  assert.deepEqual(auxia.drift.get("GetTreatment"), new Map([["treatment.status", 1]]));
});

test("each client warns for itself", async () => {
  server.script(json(200, TREATMENT));
  for (let round = 1; round <= 2; round += 1) {
    const auxia = client();
    await auxia.getTreatment(GET_TREATMENT);
    await auxia.getTreatment(GET_TREATMENT);
    await settled();
    assert.equal(warned.length, round);
  }
});

test("the callback gets every drift of every answer", async () => {
  server.script(json(200, TREATMENTS));
  const seen: [string, Drift][] = [];
  const auxia = client({ onDrift: (method, drift) => seen.push([method, drift]) });
  await auxia.getTreatments(GET_TREATMENTS);
  await auxia.getTreatments(GET_TREATMENTS);
  const once = [0, 1].map((index) => [
    "GetTreatments",
    {
      path: `userTreatments[${index}].newField`,
      kind: "unknown_field",
      detail: '"newField" is not a field of UserTreatment',
    },
  ]);
  assert.deepEqual(seen, [...once, ...once]);
});

test("strictResponses make drift an error naming each path, and no warning", async () => {
  const body = structuredClone(TREATMENT) as { treatment: { versions: Record<string, unknown>[] } };
  body.treatment.versions[0] = { status: "LIVE", rollout: 0.5 };
  server.script(json(200, body));
  const seen: Drift[] = [];
  const auxia = client({ strictResponses: true, onDrift: (_, drift) => seen.push(drift) });
  const error = await rejection(auxia.getTreatment(GET_TREATMENT));
  await settled();
  assert.ok(error instanceof ApiError);
  assert.equal(error.code, Code.UNKNOWN);
  assert.equal(error.httpStatus, 200);
  assert.equal(
    error.status.message,
    "the server's answer to GetTreatment holds what the schema does not know: " +
      'unknown_enum_value at treatment.status: treatment.status="BRAND_NEW_STATUS" is not ' +
      "a value of Status (and 1 more)",
  );
  assert.deepEqual(
    error.fieldViolations.map((violation) => [violation.field, violation.description]),
    [
      ["treatment.status", 'unknown_enum_value: treatment.status="BRAND_NEW_STATUS" is not a value of Status'],
      ["treatment.versions[0].rollout", 'unknown_field: "rollout" is not a field of TreatmentVersionPb'],
    ],
  );
  assert.deepEqual(
    seen.map((drift) => drift.path),
    ["treatment.status", "treatment.versions[0].rollout"],
  );
  assert.deepEqual(warned, []);
});

test("an answer the schema knows reports nothing", async () => {
  server.script(json(200, KNOWN));
  const seen: Drift[] = [];
  const auxia = client({ strictResponses: true, onDrift: (_, drift) => seen.push(drift) });
  const answer = await auxia.getTreatment(GET_TREATMENT);
  await settled();
  assert.deepEqual(answer, fromJsonString(GetTreatmentResponseSchema, JSON.stringify(KNOWN)));
  assert.deepEqual([seen, warned, auxia.drift.size], [[], [], 0]);
});

test("a number an open enum does not name is drift, and kept", async () => {
  server.script(json(200, { treatment: { status: 1, versions: [{ status: 9 }] } }));
  const auxia = client();
  const answer = await auxia.getTreatment(GET_TREATMENT);
  await settled();
  assert.equal(answer.treatment?.versions[0]?.status, 9);
  assert.match(warned[0]?.message ?? "", /treatment\.versions\[0\]\.status=9 is not a value/);
  assert.deepEqual(auxia.drift.get("GetTreatment"), new Map([["treatment.versions[*].status", 1]]));
});

test("a JSON type the schema does not expect is counted, and the answer malformed", async () => {
  server.script(json(200, { responseId: 7, userTreatments: [{ treatmentId: "t", newField: 1 }] }));
  const seen: Drift[] = [];
  const auxia = client({ onDrift: (_, drift) => seen.push(drift) });
  const error = await rejection(auxia.getTreatments(GET_TREATMENTS));
  await settled();
  assert.ok(error instanceof ApiError);
  assert.equal(error.code, Code.UNKNOWN);
  assert.match(error.message, /is not a valid GetTreatmentsResponse/);
  assert.deepEqual(
    seen.map((drift) => [drift.path, drift.kind, drift.detail]),
    [
      ["responseId", "wrong_json_type", "expected a string, got a number"],
      ["userTreatments[0].newField", "unknown_field", '"newField" is not a field of UserTreatment'],
    ],
  );
  assert.deepEqual(warned, []);
});

test("findDrift reports values of the right JSON type their fields cannot take, as Python does", () => {
  // The Python package's find_drift finds these very drifts (tests/unit/test_drift.py).
  const fixture = repoJson("tests/fixtures/drift/invalid_values.json") as {
    type: string;
    document: unknown;
    drifts: Drift[];
  };
  assert.equal(fixture.type, DataFieldParamsSchema.typeName);
  assert.ok(fixture.drifts.length > 5);
  assert.deepEqual(findDrift(fixture.document, DataFieldParamsSchema), fixture.drifts);
});

test("findDrift walks maps of messages, and names a root that is no object", () => {
  const params = {
    eventDataFieldParams: {
      eventSchemaName: "purchase",
      propertyValueByPropertyName: { sku: { stringValue: "A-1", dateValue: "2025-01-01" } },
    },
  };
  assert.deepEqual(findDrift(params, DataFieldParamsSchema), [
    {
      path: 'eventDataFieldParams.propertyValueByPropertyName["sku"].dateValue',
      kind: "unknown_field",
      detail: '"dateValue" is not a field of PropertyValuePb',
    },
  ]);
  assert.deepEqual(findDrift([], GetTreatmentsResponseSchema), [
    {
      path: "",
      kind: "wrong_json_type",
      detail: "expected a JSON object (GetTreatmentsResponse), got an array",
    },
  ]);
});
