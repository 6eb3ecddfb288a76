// Time startEmulator() from Node as a test suite meets it, run by bench_polyglot.py.
//
//   node polyglot_start.mjs RUNS   (in a project with @auxia/decision-api installed)
//
// After one start not counted (the first fetch of a process loads its HTTP
// client), for each run: startEmulator() until it resolves (the ready file
// read), the first GetTreatments it serves, and stop() until the server has
// exited. Prints one JSON object: {"start": [ms...], "firstCall": [ms...], "stop": [ms...]}.

import { startEmulator } from "@auxia/decision-api/testing";

const runs = Number(process.argv[2] ?? "10");
const times = { start: [], firstCall: [], stop: [] };
for (let run = -1; run < runs; run += 1) {
  const started = performance.now();
  const emulator = await startEmulator();
  const ready = performance.now();
  const answer = await emulator.client().getTreatments({
    projectId: emulator.projectId,
    userId: `bench-${run}`,
    surfaces: [{ surface: "CART_SCREEN" }],
  });
  const served = performance.now();
  if (answer.userTreatments.length !== 1) {
    throw new Error(`run ${run}: GetTreatments served ${answer.userTreatments.length} treatments`);
  }
  await emulator.stop();
  const stopped = performance.now();
  if (run < 0) {
    continue;
  }
  times.start.push(ready - started);
  times.firstCall.push(served - ready);
  times.stop.push(stopped - served);
}
console.log(JSON.stringify(times));
