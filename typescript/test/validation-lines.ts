// validate() driven by the Python tests, one request a line: their verdicts must be Python's.
//
//   node typescript/build/test/validation-lines.js < questions.jsonl > verdicts.jsonl
//
// Each line of stdin is `{"type": "<full message name>", "binary": "<base64>"}`: a
// message of the API's protos, as Python serialized it. Each is answered by one
// line, in order: `{"errors": [[path, words], ...], "warnings": [...]}`, or
// `{"error": "<message>"}` when the line cannot be read.

import { createInterface } from "node:readline";

import { createRegistry, fromBinary, type DescMessage, type DescFile } from "@bufbuild/protobuf";
import * as api from "@auxia/decision-api";

const files = Object.values(api).filter(
  (value): value is DescFile =>
    typeof value === "object" && value !== null && (value as { kind?: unknown }).kind === "file",
);
const registry = createRegistry(...files);

function answer(line: string): unknown {
  const { type, binary } = JSON.parse(line) as { type: string; binary: string };
  const schema: DescMessage | undefined = registry.getMessage(type);
  if (schema === undefined) {
    return { error: `no message type ${type}` };
  }
  const result = api.validate(schema, fromBinary(schema, Buffer.from(binary, "base64")));
  return {
    errors: result.errors.map((found) => [found.field, found.description]),
    warnings: result.warnings.map((found) => [found.field, found.description]),
  };
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (line.trim() !== "") {
    let result: unknown;
    try {
      result = answer(line);
    } catch (error) {
      result = { error: String(error) };
    }
    process.stdout.write(`${JSON.stringify(result)}\n`);
  }
}
