// validate and checkRequest: the rules of the protos, checked before anything is sent.
//
// The same verdicts as Python's on drawn requests of every type are the
// Python tests' business (answer-lines.ts); here, the shape of the API.

import assert from "node:assert/strict";
import { test } from "node:test";

import { create } from "@bufbuild/protobuf";
import {
  ApiError,
  Code,
  GetAllTreatmentsRequestSchema,
  GetTreatmentsRequestSchema,
  UpdateTreatmentRequestSchema,
  checkRequest,
  validate,
} from "@auxia/decision-api";

test("a request with every rule kept has no errors, and checkRequest returns the result", () => {
  const request = create(GetTreatmentsRequestSchema, {
    projectId: "P",
    userId: "u",
    surfaces: [{ surface: "CART_SCREEN", minimumTreatmentCount: 1n }],
  });
  const result = checkRequest(GetTreatmentsRequestSchema, request);
  assert.equal(result.ok, true);
  assert.deepEqual([...result.errors, ...result.warnings], []);
});

test("validate names every bad field by its JSON path, in Python's words", () => {
  const request = create(GetTreatmentsRequestSchema, {
    projectId: "P",
    surfaces: [{ surface: "" }, { surface: "HOME", maximumTreatmentCount: -1n }],
  });
  const found = validate(GetTreatmentsRequestSchema, request);
  assert.equal(found.ok, false);
  assert.deepEqual(
    found.errors.map((violation) => [violation.field, violation.description]),
    [
      ["userId", "required"],
      ["surfaces[0].surface", "required"],
      ["surfaces[1].maximumTreatmentCount", "must not be negative"],
    ],
  );
  assert.equal(request.surfaces.length, 2, "the message is not changed");
});

test("checkRequest throws an INVALID_ARGUMENT ApiError with a BadRequest and no HTTP status", () => {
  const request = create(UpdateTreatmentRequestSchema, { projectId: "P", lastModifiedBy: "me" });
  assert.throws(
    () => checkRequest(UpdateTreatmentRequestSchema, request),
    (error: unknown) => {
      assert.ok(error instanceof ApiError);
      assert.equal(error.code, Code.INVALID_ARGUMENT);
      assert.equal(error.httpStatus, undefined);
      assert.deepEqual(
        error.fieldViolations.map((violation) => violation.field),
        ["treatmentId"],
      );
      assert.match(error.message, /treatmentId: required: set treatmentId or externalTreatmentId/);
      return true;
    },
  );
});

test("a number no integer field can hold is judged, not thrown at: NaN and -0.5 are below 0", () => {
  const words = (pageSize: number): string[] =>
    validate(GetAllTreatmentsRequestSchema, { projectId: "P", pageSize }).errors.map(
      (violation) => `${violation.field}: ${violation.description}`,
    );
  assert.deepEqual(words(Number.NaN), ["pageSize: must not be negative"]);
  assert.deepEqual(words(-0.5), ["pageSize: must not be negative"]);
  assert.deepEqual(words(1.5), []);
});
