// findDrift driven by the Python tests, one document a line: its drifts must be Python's.
//
//   node typescript/build/test/drift-lines.js < questions.jsonl > drifts.jsonl
//
// Each line of stdin is `{"type": "<full message name>", "text": "<a JSON document>"}`;
// each is answered by one line, in order: `[{"path", "kind", "detail"}, ...]` of
// `findDrift(JSON.parse(text))`, or `{"error": "<message>"}` when the line cannot be read.

import { createInterface } from "node:readline";

import { createRegistry, type DescFile } from "@bufbuild/protobuf";
import * as api from "@auxia/decision-api";

const files = Object.values(api).filter(
  (value): value is DescFile =>
    typeof value === "object" && value !== null && (value as { kind?: unknown }).kind === "file",
);
const registry = createRegistry(...files);

function answer(line: string): unknown {
  const { type, text } = JSON.parse(line) as { type: string; text: string };
  const schema = registry.getMessage(type);
  if (schema === undefined) {
    return { error: `no message type ${type}` };
  }
  return api.findDrift(JSON.parse(text), schema);
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
