#!/usr/bin/env node
// Proto3 JSON round trip through protobuf-es, driven by the Python tests.
//
//   node ts/roundtrip.mjs GENERATED_DIR < requests.jsonl > results.jsonl
//
// GENERATED_DIR holds the `*_pb.js` modules that protoc-gen-es wrote from
// proto/ (see ts/buf.gen.ts.yaml). Each line of stdin is a JSON object
// `{"type": "<full message name>", "json": <proto3 JSON value>}`; for each
// one the script runs `fromJson(schema, json)` then `toJson(schema, message)`
// and writes exactly one line to stdout, in order:
//
//   {"json": <proto3 JSON value written by protobuf-es>}   on success
//   {"error": "<message>"}                                  on failure
//
// Lines are answered as they arrive, so a caller may keep one process open
// and send one request at a time, or pipe a whole batch in.

import { readdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";

import { createRegistry, fromJson, toJson } from "@bufbuild/protobuf";

async function* generatedModules(dir) {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      yield* generatedModules(path);
    } else if (entry.name.endsWith("_pb.js")) {
      yield path;
    }
  }
}

async function loadRegistry(dir) {
  const files = [];
  for await (const path of generatedModules(resolve(dir))) {
    const module = await import(pathToFileURL(path).href);
    for (const value of Object.values(module)) {
      if (value !== null && typeof value === "object" && value.kind === "file") {
        files.push(value);
      }
    }
  }
  if (files.length === 0) {
    throw new Error(`no protoc-gen-es modules (*_pb.js) found under ${dir}`);
  }
  return createRegistry(...files);
}

function roundTrip(registry, line) {
  const { type, json } = JSON.parse(line);
  const schema = registry.getMessage(type);
  if (schema === undefined) {
    throw new Error(`unknown message type ${JSON.stringify(type)}`);
  }
  const message = fromJson(schema, json, { registry });
  return toJson(schema, message, { registry });
}

async function main() {
  const dir = process.argv[2];
  if (dir === undefined) {
    process.stderr.write("usage: node roundtrip.mjs GENERATED_DIR < requests.jsonl\n");
    process.exit(2);
  }
  const registry = await loadRegistry(dir);
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim() === "") {
      continue;
    }
    let result;
    try {
      result = { json: roundTrip(registry, line) };
    } catch (error) {
      result = { error: error instanceof Error ? error.message : String(error) };
    }
    process.stdout.write(`${JSON.stringify(result)}\n`);
  }
}

await main();
