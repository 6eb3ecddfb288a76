// validate() driven by the Python tests, one request a line: their verdicts must be Python's.
//
//   node typescript/build/test/validation-lines.js < questions.jsonl > verdicts.jsonl
//
// Each line of stdin is `{"type": "<full message name>", "binary": "<base64>"}`: a
// message of the API's protos, as Python serialized it; with `"file"` (a base64
// FileDescriptorProto importing the package's files), a message of that file.
// Each is answered by one line, in order: `{"errors": [[path, words], ...],
// "warnings": [...]}`, or `{"error": "<message>"}` when the line cannot be read.

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
  const { type, binary, file } = JSON.parse(line) as {
    type: string;
    binary: string;
    file?: string;
  };
  const schema: DescMessage | undefined = (file ? registryOf(file) : registry).getMessage(type);
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
