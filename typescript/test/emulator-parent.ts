// A test runner that starts the emulator, for start-emulator.test.ts.
//
//   node emulator-parent.js wait    prints {"pid": <the server's pid>, "folder": <its folder>},
//                                   then waits to be killed
//   node emulator-parent.js leave   prints it, then ends without stop()

import { readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { startEmulator } from "@auxia/decision-api/testing";

const emulator = await startEmulator();
// Its folder: the one whose ready file names its server.
const folder = readdirSync(tmpdir())
  .filter((name) => name.startsWith("auxia-emulator-"))
  .map((name) => join(tmpdir(), name))
  .find((path) => {
    try {
      return (JSON.parse(readFileSync(join(path, "ready.json"), "utf8")) as { pid: number }).pid === emulator.pid;
    } catch {
      return false;
    }
  });
process.stdout.write(`${JSON.stringify({ pid: emulator.pid, folder })}\n`);
if (process.argv[2] !== "leave") {
  setInterval(() => undefined, 60_000);
}
