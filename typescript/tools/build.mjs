#!/usr/bin/env node
// @ts-check
// Build the npm package from src/ (after `buf generate --template typescript/buf.gen.yaml`):
//
//   node typescript/tools/build.mjs DIST_FOLDER
//
// 1. writes src/version.ts with the Python package's version (the one source:
//    src/auxia_decision/_version.py);
// 2. compiles src/, test/ and tools/ (type-checked) in one tsc program to
//    build/, and copies build/src (ES modules and .d.ts) to lib/, where the
//    package.json's exports point: the tests import the package by name;
// 3. stages the package in build/package (package.json at that version,
//    without its development fields; README.md; lib/) and `npm pack`s it into
//    DIST_FOLDER, replacing an older tarball of the package there.
//
// Prints the tarball's path.

import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const ROOT = resolve(HERE, "..");
const OPENAPI = ["auxia/decision/model/openapi.json", "auxia/decision/emulator/v1/openapi.json"];
const TSC = join(HERE, "node_modules", "typescript", "bin", "tsc");

/** Return the Python package's version, from the one place it is written. */
function pythonVersion() {
  const text = readFileSync(join(ROOT, "src", "auxia_decision", "_version.py"), "utf8");
  const found = /^__version__ = "([^"]+)"$/m.exec(text);
  if (!found?.[1]) {
    throw new Error("src/auxia_decision/_version.py has no __version__ line");
  }
  return found[1];
}

/** @param {string[]} args */
function tsc(...args) {
  try {
    execFileSync(process.execPath, [TSC, ...args], { cwd: HERE, stdio: "inherit" });
  } catch {
    throw new Error(`tsc ${args.join(" ")} failed (its errors are above)`);
  }
}

function main() {
  const dist = process.argv[2];
  if (!dist) {
    throw new Error("usage: build.mjs DIST_FOLDER");
  }
  const version = pythonVersion();
  writeFileSync(
    join(HERE, "src", "version.ts"),
    `// Written by tools/build.mjs from src/auxia_decision/_version.py.\n` +
      `export const VERSION = ${JSON.stringify(version)};\n`,
  );
  rmSync(join(HERE, "lib"), { recursive: true, force: true });
  rmSync(join(HERE, "build"), { recursive: true, force: true });
  tsc("-p", "tsconfig.json");
  cpSync(join(HERE, "build", "src"), join(HERE, "lib"), { recursive: true });

  const stage = join(HERE, "build", "package");
  mkdirSync(stage, { recursive: true });
  const manifest = JSON.parse(readFileSync(join(HERE, "package.json"), "utf8"));
  delete manifest.devDependencies;
  delete manifest.scripts;
  manifest.version = version;
  writeFileSync(join(stage, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  cpSync(join(HERE, "README.md"), join(stage, "README.md"));
  cpSync(join(HERE, "lib"), join(stage, "lib"), { recursive: true });
  // The OpenAPI documents, whose request schemas carry the rules (docs/rules.md), as the wheel
  // and the jar ship them: "@auxia/decision-api/openapi/auxia/decision/model/openapi.json".
  for (const api of OPENAPI) {
    cpSync(join(ROOT, "generated", api), join(stage, "openapi", api));
  }

  const out = resolve(ROOT, dist);
  mkdirSync(out, { recursive: true });
  const prefix = `${manifest.name.replace(/^@/, "").replace("/", "-")}-`;
  for (const name of readdirSync(out)) {
    if (name.startsWith(prefix) && name.endsWith(".tgz")) {
      rmSync(join(out, name));
    }
  }
  const packed = execFileSync(
    "npm",
    ["pack", "--silent", "--pack-destination", out, stage],
    { cwd: HERE, encoding: "utf8" },
  ).trim();
  console.log(join(out, packed.split("\n").at(-1) ?? ""));
}

try {
  main();
} catch (error) {
  console.error(`build.mjs: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
