// A test runner that starts the emulator, for start-emulator.test.ts.
//
//   node emulator-parent.js wait    prints {"pid": <the server's pid>}, then waits to be killed
//   node emulator-parent.js leave   prints it, then ends without stop()

import { startEmulator } from "@auxia/decision-api/testing";

const emulator = await startEmulator();
process.stdout.write(`${JSON.stringify({ pid: emulator.pid })}\n`);
if (process.argv[2] !== "leave") {
  setInterval(() => undefined, 60_000);
}
