// What the package's tests share: the repository's paths, processes, and a scripted HTTP server.

import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository's root (the tests run compiled, from typescript/build/test/). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

/** Read a JSON file of the repository. */
export function repoJson(path: string): unknown {
  return JSON.parse(readFileSync(resolve(ROOT, path), "utf8"));
}

/** Whether a process runs: it exists and is not a zombie waiting to be reaped. */
export function running(pid: number): boolean {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    return !/\nState:\tZ/.test(status);
  } catch {
    return false;
  }
}

/** Whether a process is gone within a time. */
export async function goneWithin(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!running(pid)) {
      return true;
    }
    await new Promise((done) => setTimeout(done, 20));
  }
  return !running(pid);
}

/** How the scripted server answers one request. */
export type Answer = (request: IncomingMessage, response: ServerResponse, body: string) => void;

/** One request the scripted server received. */
export interface Received {
  readonly url: string;
  readonly headers: IncomingMessage["headers"];
  readonly body: string;
}

/** An HTTP server on 127.0.0.1 that answers each request with the next scripted answer. */
export interface ScriptedServer {
  readonly url: string;
  readonly received: Received[];
  /** Queue answers; the last one is repeated once the others are used. */
  script(...answers: Answer[]): void;
  /** Forget the answers queued and the requests received. */
  clear(): void;
  close(): Promise<void>;
}

/** Start a ScriptedServer on a free loopback port. */
export async function scriptedServer(): Promise<ScriptedServer> {
  const queue: Answer[] = [];
  const received: Received[] = [];
  const server = createServer((request, response) => {
    let body = "";
    request.setEncoding("utf8");
    request.on("data", (chunk: string) => {
      body += chunk;
    });
    request.on("end", () => {
      received.push({ url: request.url ?? "", headers: request.headers, body });
      const answer = queue.length > 1 ? queue.shift() : queue[0];
      (answer ?? json(404, { code: 5, message: "nothing scripted" }))(request, response, body);
    });
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    script(...answers) {
      queue.push(...answers);
    },
    clear() {
      queue.length = 0;
      received.length = 0;
    },
    close() {
      server.closeAllConnections();
      return new Promise((done) => server.close(() => done()));
    },
  };
}

/** An answer: this status, these headers and this body, whole. */
export function answer(status: number, body: string, headers: Record<string, string> = {}): Answer {
  return (_request, response) => {
    response.writeHead(status, { "content-type": "application/json", ...headers });
    response.end(body);
  };
}

/** An answer: this status and a JSON body. */
export function json(status: number, body: unknown, headers: Record<string, string> = {}): Answer {
  return answer(status, JSON.stringify(body), headers);
}

/** An answer cut short: the head says `length` bytes, the connection closes after `sent`. */
export function cutShort(status: number, sent: string, length: number): Answer {
  return (_request, response) => {
    response.writeHead(status, { "content-type": "application/json", "content-length": length });
    response.write(sent, () => response.socket?.destroy());
  };
}

/** No answer at all: the connection is reset once the request has been read. */
export const reset: Answer = (_request, response) => {
  response.socket?.destroy();
};

/** An answer that comes after a delay. */
export function late(ms: number, then: Answer): Answer {
  return (request, response, body) => {
    const timer = setTimeout(() => then(request, response, body), ms);
    response.on("close", () => clearTimeout(timer));
  };
}
