// A test runner that starts the emulator and waits to be killed: startEmulator.test.ts kills it.
//
// Prints one JSON line, {"pid": <the server's pid>}, once the server is ready.

import { startEmulator } from "@auxia/decision-api/testing";

const emulator = await startEmulator();
process.stdout.write(`${JSON.stringify({ pid: emulator.pid })}\n`);
setInterval(() => undefined, 60_000);
