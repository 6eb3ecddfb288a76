#!/usr/bin/env node
// Request bodies checked against the OpenAPI document's request schemas with
// Ajv (JSON Schema 2020-12), driven by the Python tests: the rules of the
// protos, as any JSON client in any language would check them.
//
//   node ts/validate.mjs OPENAPI_JSON < requests.jsonl > verdicts.jsonl
//
// Each line of stdin is `{"schema": "<component name>", "body": <JSON value>}`;
// each is answered by one line, in order:
//
//   {"valid": true}
//   {"valid": false, "errors": ["<instance path>: <message>", ...]}
//   {"error": "<message>"}          when the line cannot be checked at all

import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline";

import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const DOCUMENT = "urn:auxia-decision-api:openapi";

function checker(spec) {
  // OpenAPI's own keywords (readOnly, x-oneof, ...) are annotations: not strict.
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  // The OpenAPI formats of numbers and bytes describe, they do not restrict.
  for (const format of ["int32", "uint32", "int64", "uint64", "float", "double", "byte"]) {
    ajv.addFormat(format, true);
  }
  ajv.addSchema({ $id: DOCUMENT, components: spec.components });
  const compiled = new Map();
  return (name) => {
    if (!compiled.has(name)) {
      const validate = ajv.getSchema(`${DOCUMENT}#/components/schemas/${name}`);
      if (validate === undefined) {
        throw new Error(`no schema ${JSON.stringify(name)}`);
      }
      compiled.set(name, validate);
    }
    return compiled.get(name);
  };
}

async function main() {
  const path = process.argv[2];
  if (path === undefined) {
    process.stderr.write("usage: node validate.mjs OPENAPI_JSON < requests.jsonl\n");
    process.exit(2);
  }
  const validatorOf = checker(JSON.parse(await readFile(path, "utf8")));
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim() === "") {
      continue;
    }
    let result;
    try {
      const { schema, body } = JSON.parse(line);
      const validate = validatorOf(schema);
      result = validate(body)
        ? { valid: true }
        : {
            valid: false,
            errors: validate.errors.map((error) => `${error.instancePath}: ${error.message}`),
          };
    } catch (error) {
      result = { error: error instanceof Error ? error.message : String(error) };
    }
    process.stdout.write(`${JSON.stringify(result)}\n`);
  }
}

await main();
