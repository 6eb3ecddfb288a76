// startEmulator: the start contract from Node: ready, stop, seed, clock, failures, parent death.

import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";

import {
  EmulatorStartError,
  startEmulator,
  type Emulator,
} from "@auxia/decision-api/testing";
import {
  ContentFieldDataType,
  DeliveryType,
  LogTreatmentInteractionRequest_InteractionType,
} from "@auxia/decision-api";

import { goneWithin, running } from "./support.js";

const HERE = dirname(fileURLToPath(import.meta.url));

function textField(fieldName: string) {
  return { fieldName, valueLengthLimit: 100, dataType: ContentFieldDataType.STRING };
}

/** The temporary folders of emulators (each holds a ready file while its server runs). */
async function emulatorFolders(): Promise<string[]> {
  return (await readdir(tmpdir())).filter((name) => name.startsWith("auxia-emulator-"));
}

/** The pid in a folder's ready file, if it has one. */
function readyPid(folder: string): number | undefined {
  try {
    return (JSON.parse(readFileSync(join(folder, "ready.json"), "utf8")) as { pid: number }).pid;
  } catch {
    return undefined;
  }
}

/** The EmulatorStartError a start rejects with; fails the test on any other outcome. */
async function startFailure(options: Parameters<typeof startEmulator>[0]): Promise<EmulatorStartError> {
  try {
    const emulator = await startEmulator(options);
    await emulator.stop();
  } catch (error) {
    assert.ok(error instanceof EmulatorStartError, String(error));
    assert.equal(error.message.includes("\n"), false, error.message);
    return error;
  }
  assert.fail("it started");
}

// These start servers that do not depend on each other: run them side by side.
describe("startEmulator", { concurrency: true }, () => {
  test("it serves on free loopback ports, says where, and stop() ends it and removes its files", async () => {
    const before = new Set(await emulatorFolders());
    const emulator = await startEmulator();
    // Its folder: the new one whose ready file names its pid (other suites may start emulators).
    const made = (await emulatorFolders()).filter((name) => !before.has(name));
    const mine = made.filter((name) => readyPid(join(tmpdir(), name)) === emulator.pid);
    assert.equal(mine.length, 1);
    const folder = join(tmpdir(), mine[0] ?? "");
    try {
      assert.match(emulator.baseUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.match(emulator.grpcTarget, /^127\.0\.0\.1:\d+$/);
      assert.equal(emulator.projectId, "PROJECT_ID");
      assert.equal(emulator.apiKey, "TEST_API_KEY");
      assert.equal(emulator.adminKey, "EMULATOR_ADMIN_KEY");
      assert.deepEqual(emulator.env, {
        AUXIA_BASE_URL: emulator.baseUrl,
        AUXIA_GRPC_TARGET: emulator.grpcTarget,
        AUXIA_API_KEY: "TEST_API_KEY",
        AUXIA_EMULATOR_ADMIN_KEY: "EMULATOR_ADMIN_KEY",
      });
      const health = await fetch(`${emulator.baseUrl}/healthz`);
      assert.equal(health.status, 200);
      assert.ok(running(emulator.pid));
    } finally {
      await emulator.stop();
    }
    assert.equal(running(emulator.pid), false);
    assert.equal(existsSync(folder), false);
    await emulator.stop(); // twice is fine
  });

  test("admin.interactions, decisions and journal follow every page; list calls answer one", async () => {
    const emulator = await startEmulator();
    try {
      const client = emulator.client();
      for (let index = 0; index < 5; index += 1) {
        await client.logTreatmentInteraction({
          projectId: emulator.projectId,
          userId: "paged",
          treatmentTrackingId: `paged-${index}`,
          interactionType: LogTreatmentInteractionRequest_InteractionType.VIEWED,
          interactionTimeMicros: 1_732_312_345_123_456n,
        });
        await client.getTreatments({
          projectId: emulator.projectId,
          userId: "paged",
          surfaces: [{ surface: "CART_SCREEN" }],
        });
      }
      const firstPage = await emulator.admin.listInteractions({ userId: "paged", pageSize: 2 });
      assert.equal(firstPage.interactions.length, 2);
      assert.notEqual(firstPage.nextPageToken, "");
      const interactions = await emulator.admin.interactions({ userId: "paged", pageSize: 2 });
      assert.deepEqual(
        interactions.map((found) => found.interaction?.treatmentTrackingId),
        ["paged-0", "paged-1", "paged-2", "paged-3", "paged-4"],
      );
      const decisions = await emulator.admin.decisions({ userId: "paged", pageSize: 2 });
      assert.equal(decisions.length, 5);
      const journal = await emulator.admin.journal({ pageSize: 1 }); // its own pages: 1,000
      assert.equal(journal.filter((entry) => entry.method === "GetTreatments").length, 5);
    } finally {
      await emulator.stop();
    }
  });

  test("two emulators run side by side", async () => {
    const [first, second] = await Promise.all([startEmulator(), startEmulator()]);
    try {
      assert.notEqual(first.baseUrl, second.baseUrl);
    } finally {
      await Promise.all([first.stop(), second.stop()]);
    }
  });

  test("a seed given as a message, and a frozen clock", async () => {
    const emulator: Emulator = await startEmulator({
      seed: {
        projects: [
          {
            projectId: "SHOP",
            numericProjectId: 7n,
            apiKeys: ["SHOP_KEY"],
            supportedLanguageCodes: ["en"],
            treatmentTypes: [
              {
                name: "BANNER",
                deliveryType: DeliveryType.IN_APP,
                languageSpecificContentFieldTypes: [textField("title")],
                languageAgnosticContentFieldTypes: [textField("link")],
                surfaces: [{ name: "CART_SCREEN" }],
              },
            ],
          },
        ],
        adminKeys: ["SHOP_ADMIN"],
      },
      clock: "2030-01-01T00:00:00Z",
    });
    try {
      assert.equal(emulator.projectId, "SHOP");
      assert.equal(emulator.apiKey, "SHOP_KEY");
      const { clock } = await emulator.admin.getClock();
      assert.equal(clock?.frozen, true);
      assert.equal(clock?.now?.seconds, BigInt(Date.parse("2030-01-01T00:00:00Z") / 1000));
      const answer = await emulator.client().getTreatments({
        projectId: "SHOP",
        userId: "u",
        surfaces: [{ surface: "CART_SCREEN" }],
      });
      assert.deepEqual(answer.userTreatments, []);
    } finally {
      await emulator.stop();
    }
  });

  test("a seed without admin keys: admin says so in one line", async () => {
    const emulator = await startEmulator({
      seed: { projects: [{ projectId: "P", numericProjectId: 1n, apiKeys: ["K"], supportedLanguageCodes: ["en"] }] },
    });
    try {
      assert.equal(emulator.adminKey, undefined);
      assert.equal("AUXIA_EMULATOR_ADMIN_KEY" in emulator.env, false);
      assert.throws(() => emulator.admin, { message: /seed has no admin key/ });
    } finally {
      await emulator.stop();
    }
  });

  test("a seed message the server refuses: its reason names the field", async () => {
    const error = await startFailure({ seed: { projects: [{ projectId: "P", apiKeys: ["K"] }] } });
    assert.match(error.reason, /projects\[0\]\.numericProjectId: required/);
  });

  test("a bad seed: the server's one-line reason, and no process left", async () => {
    const folder = await mkdtemp(join(tmpdir(), "bad-seed-"));
    const seed = join(folder, "seed.json");
    await writeFile(seed, '{"projects": [{"projectId": 42}]}');
    const error = await startFailure({ seed }).finally(() => rm(folder, { recursive: true, force: true }));
    assert.match(error.message, /^auxia-decision serve could not start \(exit 2\): error: the seed .*seed\.json/);
    assert.equal(error.exitCode, 2);
    assert.match(error.reason, /^error: the seed /);
    assert.ok(error.pid !== undefined);
    assert.equal(running(error.pid), false);
  });

  test("a bad clock: the server's one-line reason", async () => {
    const error = await startFailure({ clock: "next tuesday" });
    assert.match(error.reason, /--clock/);
  });

  test("auxia-decision missing from PATH: one line saying how to install it", async () => {
    const error = await startFailure({ env: { ...process.env, PATH: "/nonexistent" } });
    assert.equal(
      error.message,
      "auxia-decision is not installed (not found on PATH): install it with " +
        "pipx install 'auxia-decision-api[server]', or pass its path as the command option",
    );
  });

  test("a command line that runs auxia-decision", async () => {
    // The venv's python is first on PATH in these tests, as pipx or uvx would run it.
    const emulator = await startEmulator({ command: ["python", "-m", "auxia_decision"] });
    try {
      assert.equal((await fetch(`${emulator.baseUrl}/healthz`)).status, 200);
    } finally {
      await emulator.stop();
    }
    assert.equal(running(emulator.pid), false);
  });

  test("a command path that does not exist: one line naming it", async () => {
    const error = await startFailure({ command: "/nowhere/auxia-decision" });
    assert.match(error.message, /^\/nowhere\/auxia-decision is not installed \(not found\): install it with pipx/);
  });
});

// Not beside the others: each of them holds an emulator while it runs.
test("emulators started and stopped one after another add one exit listener in all", async () => {
  const before = process.listenerCount("exit");
  for (let round = 0; round < 3; round++) {
    const emulator = await startEmulator();
    await emulator.stop();
  }
  const after = process.listenerCount("exit");
  assert.ok(after <= before + 1, `${after} exit listeners, ${before} before`);
});

/** Start the runner script; resolve to it and the pid of the server it started. */
async function runner(mode: "wait" | "leave"): Promise<{ child: ChildProcess; pid: number; folder: string }> {
  const child = spawn(process.execPath, [join(HERE, "emulator-parent.js"), mode], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once("line", resolve);
    child.once("exit", (code) => reject(new Error(`the runner exited (${code}) before the server was ready`)));
  });
  const said = JSON.parse(line) as { pid: number; folder?: string };
  assert.ok(said.folder, "the runner found no folder of its emulator");
  return { child, pid: said.pid, folder: said.folder };
}

test("a runner killed with SIGKILL leaves no server 2 s later", async () => {
  const { child, pid, folder } = await runner("wait");
  try {
    assert.ok(running(pid));
    child.kill("SIGKILL");
    assert.ok(await goneWithin(pid, 2000), `server ${pid} still runs 2 s after its runner was killed`);
  } finally {
    child.kill("SIGKILL");
    // Nothing of the runner ran to remove it.
    await rm(folder, { recursive: true, force: true });
  }
});

test("a runner that ends without stop() ends at once, its server with it, its folder removed", async () => {
  const { child, pid, folder } = await runner("leave");
  const code = await new Promise((resolve) => {
    if (child.exitCode !== null) {
      resolve(child.exitCode);
    }
    child.once("exit", resolve);
  });
  assert.equal(code, 0);
  assert.ok(await goneWithin(pid, 2000), `server ${pid} still runs 2 s after its runner ended`);
  assert.equal(existsSync(folder), false, `${folder} is left after its runner ended`);
});
