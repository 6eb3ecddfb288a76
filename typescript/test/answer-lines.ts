// validate() and findDrift driven by the Python tests, one question a line: their answers
// must be Python's (tests/_rule_draws.py, tests/_drift_draws.py).
//
//   node typescript/build/test/answer-lines.js < questions.jsonl > answers.jsonl
//
// Each line of stdin is a JSON object, answered by one line, in order (or by
// `{"error": "<message>"}` when the line cannot be read):
//
// - `{"type": "<full message name>", "binary": "<base64>"}`: a message of the API's
//   protos, as Python serialized it; with `"file"` (a base64 FileDescriptorProto
//   importing the package's files), a message of that file. Answered by validate's
//   verdict: `{"errors": [[path, words], ...], "warnings": [...]}`.
// - `{"type": "<full message name>", "text": "<a JSON document>"}`: answered by the
//   drifts of `findDrift(JSON.parse(text))`, `[{"path", "kind", "detail"}, ...]`.

import { createInterface } from "node:readline";

import {
  createFileRegistry,
  createRegistry,
  fromBinary,
  type DescFile,
  type DescMessage,
} from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import * as api from "@auxia/decision-api";

const files = Object.values(api).filter(
  (value): value is DescFile =>
    typeof value === "object" && value !== null && (value as { kind?: unknown }).kind === "file",
);
const registry = createRegistry(...files);
/** The package's files and every file they import, by name: what a file of the test imports. */
const byName = new Map<string, DescFile>();
const toName = [...files];
for (let file = toName.pop(); file !== undefined; file = toName.pop()) {
  if (!byName.has(file.proto.name)) {
    byName.set(file.proto.name, file);
    toName.push(...file.dependencies);
  }
}

/** The message types of a file of the test's own (its imports are the package's). */
function registryOf(file: string): ReturnType<typeof createRegistry> {
  const proto = fromBinary(FileDescriptorProtoSchema, Buffer.from(file, "base64"));
  return createFileRegistry(proto, (name) => byName.get(name));
}

function answer(line: string): unknown {
  const { type, binary, file, text } = JSON.parse(line) as {
    type: string;
    binary?: string;
    file?: string;
    text?: string;
  };
  const schema: DescMessage | undefined = (file ? registryOf(file) : registry).getMessage(type);
  if (schema === undefined) {
    return { error: `no message type ${type}` };
  }
  if (text !== undefined) {
    return api.findDrift(JSON.parse(text), schema);
  }
  if (binary === undefined) {
    return { error: "neither binary nor text" };
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
