// startEmulator: the local Auxia server for any Node test runner, by the start contract.

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { create, toJsonString, type MessageInitShape } from "@bufbuild/protobuf";

import { createClient, type AuxiaClient, type ClientOptions } from "./client.js";
import { createAdminClient, type AdminClient } from "./emulator.js";
import { SeedSchema } from "./gen/auxia/decision/server/seed_pb.js";

export * from "./gen/auxia/decision/server/index.js";

/** What `auxia-decision` is called when no command is given: the one on PATH. */
const DEFAULT_COMMAND = "auxia-decision";
/** How to install the command, for the error that says it is missing. */
const INSTALL = "pipx install 'auxia-decision-api[server]'";
const POLL_MS = 10;
const STOP_GRACE_MS = 5000;
/** How much of the server's standard error is kept to say why it failed. */
const MAX_STDERR = 64 * 1024;

/** The folders of emulators not stopped yet: removed when this process exits. */
const unstopped = new Set<string>();
let removingAtExit = false;

function removeUnstopped(): void {
  for (const folder of unstopped) {
    rmSync(folder, { recursive: true, force: true });
  }
  unstopped.clear();
}

/** What startEmulator takes. */
export interface EmulatorOptions {
  /**
   * The `auxia-decision` command: its path, or a command line that runs it
   * (`["uvx", "--from", "auxia-decision-api[server]", "auxia-decision"]`);
   * by default the one on PATH.
   */
  readonly command?: string | readonly string[];
  /** More arguments of `auxia-decision serve` (`["--log-level", "INFO"]`). */
  readonly args?: readonly string[];
  /**
   * The world it starts with: a seed file's path, or a Seed (the server checks
   * it, and fills in what a seed may leave out, such as each treatment type's
   * projectId); by default the docs' world.
   */
  readonly seed?: string | MessageInitShape<typeof SeedSchema>;
  /** `real` (the default), or an RFC 3339 time to start frozen at (`2030-01-01T00:00:00Z`). */
  readonly clock?: string;
  /** How long it may take to start, in milliseconds (30 s). */
  readonly startTimeoutMs?: number;
  /** The server's environment; by default this process's. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** The ready file of the start contract: what a started server tells its starter. */
interface ReadyFile {
  readonly restUrl: string;
  readonly grpcTarget: string;
  readonly pid: number;
  readonly projectId: string;
  readonly apiKey: string;
  readonly adminKey?: string;
}

/** A running local Auxia server, started by startEmulator. */
export interface Emulator {
  /** Its REST base URL: `http://127.0.0.1:PORT`. */
  readonly baseUrl: string;
  /** Its gRPC address: `127.0.0.1:PORT`. */
  readonly grpcTarget: string;
  /** The seed's first project. */
  readonly projectId: string;
  /** The first API key of the seed's first project. */
  readonly apiKey: string;
  /** The seed's first admin key; undefined when the seed has none. */
  readonly adminKey: string | undefined;
  /** The server's process id. */
  readonly pid: number;
  /** The environment a client needs (`AUXIA_BASE_URL`, ...), as `auxia-decision env` prints it. */
  readonly env: Readonly<Record<string, string>>;
  /** A client of its emulator admin API; throws when the seed has no admin key. */
  readonly admin: AdminClient;
  /** Return a client of the API on it, with its base URL and API key. */
  client(options?: Omit<ClientOptions, "baseUrl" | "apiKey">): AuxiaClient;
  /** Stop it (SIGTERM, then SIGKILL after 5 s) and remove its files; resolves once it has exited. */
  stop(): Promise<void>;
}

/** The server could not start: `reason` is its one-line reason. */
export class EmulatorStartError extends Error {
  override readonly name = "EmulatorStartError";

  constructor(
    message: string,
    /** Why, in one line: the server's last line on standard error, or what went wrong. */
    readonly reason: string,
    /** The server's exit code, if it exited. */
    readonly exitCode: number | null,
    /** The server's process id, if it was started; it is not running any more. */
    readonly pid: number | undefined,
  ) {
    super(message);
  }
}

/**
 * Start the local Auxia server (`auxia-decision serve`) on free loopback
 * ports with an in-memory store, for a test suite.
 *
 * It runs with `--ready-file` (in a temporary folder) and `--exit-with-parent`
 * (its standard input a pipe), so it stops when `stop()` is called, and also
 * when this process ends, however it ends; its folder is removed by `stop()`
 * or when this process exits. Rejects with an EmulatorStartError
 * when the command is missing (saying how to install it) or the server
 * cannot start (with its one-line reason); no process is then left running.
 */
export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const folder = await mkdtemp(join(tmpdir(), "auxia-emulator-"));
  try {
    const [file = DEFAULT_COMMAND, ...prefix] =
      typeof options.command === "string" ? [options.command] : (options.command ?? []);
    const args = [...prefix, ...(await serveArgs(options, folder))];
    const child = spawn(file, args, {
      stdio: ["pipe", "ignore", "pipe"],
      env: options.env ?? process.env,
    });
    const running = await whenReady(child, file, options, join(folder, "ready.json"));
    return emulator(child, running, folder);
  } catch (error) {
    await rm(folder, { recursive: true, force: true });
    throw error;
  }
}

async function serveArgs(options: EmulatorOptions, folder: string): Promise<string[]> {
  const args = ["serve", "--host", "127.0.0.1", "--rest-port", "0", "--grpc-port", "0"];
  args.push("--db", ":memory:", "--ready-file", join(folder, "ready.json"), "--exit-with-parent");
  if (typeof options.seed === "string") {
    args.push("--seed", options.seed);
  } else if (options.seed !== undefined) {
    const path = join(folder, "seed.json");
    await writeFile(path, toJsonString(SeedSchema, create(SeedSchema, options.seed)));
    args.push("--seed", path);
  }
  if (options.clock !== undefined) {
    args.push("--clock", options.clock);
  }
  return [...args, ...(options.args ?? [])];
}

/** Wait for the ready file; reject, with no process left, when the server cannot start. */
function whenReady(
  child: ChildProcess,
  command: string,
  options: EmulatorOptions,
  ready: string,
): Promise<ReadyFile> {
  const timeoutMs = options.startTimeoutMs ?? 30_000;
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-MAX_STDERR);
  });
  const lastLine = (): string =>
    stderr
      .split("\n")
      .map((line) => line.trim())
      .filter(Boolean)
      .at(-1) ?? "";
  return new Promise<ReadyFile>((resolve, reject) => {
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const done = (): void => {
      clearTimeout(timer);
      child.off("error", onError);
      child.off("exit", onExit);
    };
    const onError = (error: NodeJS.ErrnoException): void => {
      done();
      const reason =
        error.code === "ENOENT"
          ? `${command} is not installed (not found${options.command ? "" : " on PATH"}): ` +
            `install it with ${INSTALL}, or pass its path as the command option`
          : `${command} cannot be run: ${error.message}`;
      reject(new EmulatorStartError(reason, reason, null, undefined));
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      done();
      const reason =
        lastLine() || `it exited (${signal ?? code}) without saying why, and wrote no ready file`;
      const message = `${command} serve could not start (exit ${signal ?? code}): ${reason}`;
      reject(new EmulatorStartError(message, reason, code, child.pid));
    };
    const poll = (): void => {
      if (existsSync(ready)) {
        done();
        readReadyFile(ready).then(resolve, (error: unknown) => {
          void kill(child).then(() => reject(error));
        });
        return;
      }
      if (Date.now() - started > timeoutMs) {
        done();
        const said = lastLine();
        const reason = `it wrote no ready file within ${timeoutMs / 1000} s${said ? `; it said: ${said}` : ""}`;
        void kill(child).then(() =>
          reject(new EmulatorStartError(`${command} serve did not start: ${reason}`, reason, null, child.pid)),
        );
        return;
      }
      timer = setTimeout(poll, POLL_MS);
    };
    child.once("error", onError);
    child.once("exit", onExit);
    timer = setTimeout(poll, POLL_MS);
  });
}

/** Read the ready file a server wrote (atomically: all of it). */
async function readReadyFile(path: string): Promise<ReadyFile> {
  const document = JSON.parse(await readFile(path, "utf8")) as Partial<ReadyFile>;
  if (typeof document.restUrl !== "string" || typeof document.apiKey !== "string") {
    throw new Error(`the ready file ${path} is not one: no restUrl or apiKey`);
  }
  return document as ReadyFile;
}

/** Stop a child: SIGTERM, SIGKILL after the grace period; resolve once it has exited. */
function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve();
  }
  child.ref(); // keep this process alive until the child has exited
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
    child.once("exit", () => {
      clearTimeout(force);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

function emulator(child: ChildProcess, ready: ReadyFile, folder: string): Emulator {
  // This process may end without stop(): the server then sees its standard
  // input close (and its parent go) and stops; nothing here keeps this
  // process alive for it.
  child.unref();
  (child.stdin as Socket | null)?.unref();
  (child.stderr as Socket | null)?.unref();
  child.stderr?.resume();
  // Its server stops by itself then; its folder is removed here.
  if (!removingAtExit) {
    removingAtExit = true; // one listener, however many emulators start
    process.once("exit", removeUnstopped);
  }
  unstopped.add(folder);
  let stopping: Promise<void> | undefined;
  let admin: AdminClient | undefined;
  const env: Record<string, string> = {
    AUXIA_BASE_URL: ready.restUrl,
    AUXIA_GRPC_TARGET: ready.grpcTarget,
    AUXIA_API_KEY: ready.apiKey,
  };
  if (ready.adminKey !== undefined) {
    env["AUXIA_EMULATOR_ADMIN_KEY"] = ready.adminKey;
  }
  return {
    baseUrl: ready.restUrl,
    grpcTarget: ready.grpcTarget,
    projectId: ready.projectId,
    apiKey: ready.apiKey,
    adminKey: ready.adminKey,
    pid: ready.pid,
    env: Object.freeze(env),
    get admin(): AdminClient {
      if (ready.adminKey === undefined) {
        throw new Error("the emulator's seed has no admin key: add one to its adminKeys");
      }
      admin ??= createAdminClient({ baseUrl: ready.restUrl, adminKey: ready.adminKey });
      return admin;
    },
    client(options = {}) {
      return createClient({ ...options, baseUrl: ready.restUrl, apiKey: ready.apiKey });
    },
    stop() {
      stopping ??= kill(child)
        .then(() => rm(folder, { recursive: true, force: true }))
        .then(() => {
          unstopped.delete(folder);
        });
      return stopping;
    },
  };
}
