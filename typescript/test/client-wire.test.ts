// The client against a scripted HTTP server: retries, errors, garbage and cut-short answers, keys.

import assert from "node:assert/strict";
import { createServer, type Socket } from "node:net";
import { after, before, beforeEach, describe, test } from "node:test";

import { create, createRegistry, toJson } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import {
  ApiError,
  Code,
  createClient,
  DEFAULT_RETRY,
  GetTreatmentsRequestSchema,
  LogTreatmentInteractionRequest_InteractionType,
  TagPbSchema,
  type AuxiaClient,
} from "@auxia/decision-api";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  StatusSchema,
  file_google_rpc_error_details,
} from "@auxia/decision-api/rpc";

import {
  answer,
  cutShort,
  json,
  late,
  reset,
  scriptedServer,
  type ScriptedServer,
} from "./support.js";

const KEY = "SECRET-KEY-0123456789";
const REQUEST = { projectId: "P", userId: "u", surfaces: [{ surface: "CART_SCREEN" }] };
const LOG = {
  projectId: "P",
  treatmentTrackingId: "T1",
  interactionType: LogTreatmentInteractionRequest_InteractionType.VIEWED,
  interactionTimeMicros: 1_732_312_345_123_456n,
};
const OK_BODY = JSON.stringify({ responseId: "r1", userTreatments: [{ treatmentId: "T" }] });
// Short waits between attempts: the policy is the default one otherwise.
const FAST = { initialBackoffMs: 1, maxBackoffMs: 5 };

let server: ScriptedServer;
let client: AuxiaClient;

before(async () => {
  server = await scriptedServer();
});
after(async () => {
  await server.close();
});
beforeEach(() => {
  server.clear();
  client = createClient({ baseUrl: `${server.url}/`, apiKey: KEY, retry: FAST });
});

/** The ApiError a call rejects with; fails the test on any other outcome. */
async function rejection(call: Promise<unknown>): Promise<ApiError> {
  try {
    await call;
  } catch (error) {
    assert.ok(error instanceof ApiError, `not an ApiError: ${String(error)}`);
    assert.doesNotMatch(error.message, new RegExp(KEY));
    return error;
  }
  assert.fail("the call succeeded");
}

describe("a call", () => {
  test("posts proto3 JSON to the method's path, the key only in x-api-key", async () => {
    server.script(answer(200, OK_BODY));
    const response = await client.getTreatments(REQUEST);
    assert.equal(response.$typeName, "io.auxia.decision.model.GetTreatmentsResponse");
    assert.equal(response.userTreatments[0]?.treatmentId, "T");
    const [sent] = server.received;
    assert.equal(sent?.url, "/v1/GetTreatments");
    assert.deepEqual(JSON.parse(sent?.body ?? ""), REQUEST);
    assert.equal(sent?.headers["x-api-key"], KEY);
    assert.equal(sent?.headers["content-type"], "application/json");
    assert.match(String(sent?.headers["user-agent"]), /^auxia-decision-api-typescript\/\d/);
    assert.doesNotMatch(sent?.url ?? "", /SECRET/);
  });

  test("ignores the fields of an answer it does not know", async () => {
    server.script(answer(200, JSON.stringify({ responseId: "r", futureField: [1] })));
    assert.equal((await client.getTreatments(REQUEST)).responseId, "r");
  });
});

describe("retries", () => {
  test("503 then 200: the call is sent again and succeeds", async () => {
    server.script(json(503, { code: 14, message: "busy" }), answer(200, OK_BODY));
    assert.equal((await client.logTreatmentInteraction(LOG)).$typeName.endsWith("Response"), true);
    assert.equal(server.received.length, 2);
  });

  test("429 and 503 give up after maxAttempts, with the last answer's status", async () => {
    server.script(json(429, { code: 8, message: "slow down" }));
    const error = await rejection(client.getTreatments(REQUEST));
    assert.equal(server.received.length, DEFAULT_RETRY.maxAttempts);
    assert.equal(error.code, Code.RESOURCE_EXHAUSTED);
    assert.equal(error.httpStatus, 429);
    assert.equal(error.message, "RESOURCE_EXHAUSTED (HTTP 429): slow down");
  });

  test("Retry-After in seconds is waited for", async () => {
    server.script(json(503, { code: 14, message: "busy" }, { "retry-after": "1" }), answer(200, OK_BODY));
    const started = Date.now();
    await client.getTreatments(REQUEST);
    assert.ok(Date.now() - started >= 950, `waited only ${Date.now() - started} ms`);
    assert.equal(server.received.length, 2);
  });

  test("Retry-After as an HTTP date is waited for", async () => {
    const soon = new Date(Date.now() + 1000).toUTCString();
    server.script(json(503, { code: 14, message: "busy" }, { "retry-after": soon }), answer(200, OK_BODY));
    await client.getTreatments(REQUEST);
    assert.equal(server.received.length, 2);
  });

  test("a Retry-After longer than maxRetryAfterMs is not waited for: the error comes at once", async () => {
    server.script(json(503, { code: 14, message: "down for maintenance" }, { "retry-after": "120" }));
    const error = await rejection(client.getTreatments(REQUEST));
    assert.equal(server.received.length, 1);
    assert.equal(error.code, Code.UNAVAILABLE);
    assert.equal(error.httpStatus, 503);
  });

  test("other error statuses are not retried", async () => {
    server.script(json(500, { code: 13, message: "boom" }));
    const error = await rejection(client.getDataFields({ projectId: "P", dataFieldParams: [] }));
    assert.equal(server.received.length, 1);
    assert.equal(error.code, Code.INTERNAL);
  });

  test("a connection refused is retried for every method, then UNAVAILABLE without HTTP status", async () => {
    const closed = createServer();
    await new Promise<void>((done) => closed.listen(0, "127.0.0.1", done));
    const { port } = closed.address() as { port: number };
    await new Promise((done) => closed.close(done));
    const nowhere = createClient({ baseUrl: `http://127.0.0.1:${port}`, apiKey: KEY, retry: FAST });
    const error = await rejection(nowhere.logTreatmentInteraction(LOG));
    assert.equal(error.code, Code.UNAVAILABLE);
    assert.equal(error.httpStatus, undefined);
    assert.match(error.message, /^UNAVAILABLE \(no HTTP answer\): LogTreatmentInteraction failed after 4 attempts: .*ECONNREFUSED/);
  });

  test("an answer that is not HTTP is not retried, and says to try https://", async () => {
    // What a TLS server sends first, as a plain http:// client meets it.
    const tls = Buffer.from([0x16, 0x03, 0x01, 0x00, 0x2a, 0x02, 0x00, 0x00, 0x26, 0x03, 0x03, ...new Array(40).fill(0)]);
    server.script((_request, response) => response.socket?.end(tls));
    const error = await rejection(client.getTreatment({ projectId: "P", treatmentId: "T" }));
    assert.equal(server.received.length, 1);
    assert.equal(error.code, Code.UNAVAILABLE);
    assert.match(error.message, /GetTreatment failed: the answer is not HTTP \(is the server TLS\? then use an https:\/\/ URL\)/);
  });

  test("TLS to a plain-HTTP port is not retried, and says to try http://", async () => {
    const sockets = new Set<Socket>();
    const plain = createServer((socket) => {
      sockets.add(socket);
      socket.on("error", () => {});
      socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n");
    });
    await new Promise<void>((done) => plain.listen(0, "127.0.0.1", done));
    const { port } = plain.address() as { port: number };
    try {
      const secure = createClient({ baseUrl: `https://127.0.0.1:${port}`, apiKey: KEY, retry: FAST });
      const error = await rejection(secure.getTreatment({ projectId: "P", treatmentId: "T" }));
      assert.equal(sockets.size, 1);
      assert.equal(error.code, Code.UNAVAILABLE);
      assert.match(error.message, /GetTreatment failed: TLS failed \(is the server plain HTTP\? then use an http:\/\/ URL\)/);
    } finally {
      for (const socket of sockets) {
        socket.destroy(); // the client's end may stay half open after the failed handshake
      }
      await new Promise((done) => plain.close(done));
    }
  });

  test("a connection reset after sending is not retried for GetTreatments (a repeat counts twice)", async () => {
    server.script(reset);
    const error = await rejection(client.getTreatments(REQUEST));
    assert.equal(server.received.length, 1);
    assert.equal(error.code, Code.UNAVAILABLE);
    assert.equal(error.httpStatus, undefined);
  });

  test("a connection reset after sending is retried for GetTreatment (safe to repeat)", async () => {
    server.script(reset, reset, answer(200, JSON.stringify({})));
    await client.getTreatment({ projectId: "P", treatmentId: "T" });
    assert.equal(server.received.length, 3);
  });

  test("a timeout is DEADLINE_EXCEEDED, and not retried for LogTreatmentInteraction", async () => {
    server.script(late(2000, answer(200, "{}")));
    const error = await rejection(client.logTreatmentInteraction(LOG, { timeoutMs: 100 }));
    assert.equal(error.code, Code.DEADLINE_EXCEEDED);
    assert.equal(server.received.length, 1);
    assert.match(error.message, /failed after 1 attempt: no whole answer within the timeout/);
  });

  test("an abort signal cancels the call and its retries", async () => {
    server.script(json(503, { code: 14, message: "busy" }, { "retry-after": "10" }));
    const controller = new AbortController();
    const call = client.getTreatments(REQUEST, { signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    const error = await rejection(call);
    assert.equal(error.code, Code.CANCELLED);
  });
});

describe("answers that are not what they should be", () => {
  test("a 200 that is not JSON is an ApiError with the HTTP status, not a SyntaxError", async () => {
    server.script(answer(200, "<html>proxy says hi</html>", { "content-type": "text/html" }));
    const error = await rejection(client.getTreatments(REQUEST));
    assert.equal(error.code, Code.UNKNOWN);
    assert.equal(error.httpStatus, 200);
    assert.match(error.message, /^UNKNOWN \(HTTP 200\): the server's answer to GetTreatments is not a valid GetTreatmentsResponse: /);
  });

  test("a 200 whose JSON stops early is an ApiError with the HTTP status", async () => {
    server.script(answer(200, '{"responseId": "r1", "userTreat'));
    const error = await rejection(client.getTreatments(REQUEST));
    assert.equal(error.httpStatus, 200);
    assert.equal(error.code, Code.UNKNOWN);
  });

  test("a 200 of the wrong shape is an ApiError naming the type", async () => {
    server.script(answer(200, JSON.stringify({ userTreatments: "all of them" })));
    const error = await rejection(client.getTreatments(REQUEST));
    assert.match(error.message, /not a valid GetTreatmentsResponse/);
  });

  test("an answer cut short (fewer bytes than its Content-Length) is an ApiError with the HTTP status", async () => {
    server.script(cutShort(200, OK_BODY.slice(0, 10), OK_BODY.length));
    const error = await rejection(client.getTreatments(REQUEST));
    assert.equal(error.httpStatus, 200);
    assert.equal(error.code, Code.UNAVAILABLE);
    assert.match(error.message, /GetTreatments failed after 1 attempt: the answer was cut short/);
    assert.equal(server.received.length, 1); // sent, so not repeated for GetTreatments
  });

  test("an answer cut short is retried for a method safe to repeat", async () => {
    server.script(cutShort(200, "{", 50), answer(200, JSON.stringify({})));
    await client.getAllTreatments({ projectId: "P" });
    assert.equal(server.received.length, 2);
  });

  test("a proxy's HTML error page: the code follows the HTTP status, the message quotes it", async () => {
    server.script(answer(502, "<html><body>Bad   gateway</body></html>\n", { "content-type": "text/html; charset=utf-8" }));
    const error = await rejection(client.logTreatmentInteraction(LOG));
    assert.equal(error.code, Code.UNAVAILABLE);
    assert.equal(error.httpStatus, 502);
    assert.equal(
      error.message,
      "UNAVAILABLE (HTTP 502): HTTP 502 with a non-Status body (text/html): <html><body>Bad gateway</body></html>",
    );
  });

  test("a redirect is not followed (the key would go with it): an error with its status", async () => {
    server.script(answer(307, "", { location: "http://127.0.0.1:9/elsewhere" }));
    const error = await rejection(client.getTreatments(REQUEST));
    assert.equal(error.httpStatus, 307);
    assert.equal(error.code, Code.UNKNOWN);
    assert.equal(server.received.length, 1);
  });

  test("an error body that repeats the API key does not reach the error's message", async () => {
    server.script(answer(401, `invalid key ${KEY} for this project`, { "content-type": "text/plain" }));
    const error = await rejection(client.getTreatments(REQUEST));
    assert.equal(error.code, Code.UNAUTHENTICATED);
    assert.match(error.message, /invalid key \[redacted\] for this project/);
  });

  test("a google.rpc.Status answer: code, message and typed details", async () => {
    const status = create(StatusSchema, {
      code: Code.INVALID_ARGUMENT,
      message: "the request has 2 invalid fields",
      details: [
        anyPack(
          BadRequestSchema,
          create(BadRequestSchema, {
            fieldViolations: [
              { field: "userId", description: "required" },
              { field: "surfaces[0].surface", description: "required" },
            ],
          }),
        ),
        anyPack(ErrorInfoSchema, create(ErrorInfoSchema, { reason: "R", domain: "auxia.io" })),
      ],
    });
    const registry = createRegistry(file_google_rpc_error_details);
    server.script(answer(400, JSON.stringify(toJson(StatusSchema, status, { registry }))));
    const error = await rejection(client.getTreatments(REQUEST));
    assert.equal(error.code, Code.INVALID_ARGUMENT);
    assert.equal(error.codeName, "INVALID_ARGUMENT");
    assert.equal(error.httpStatus, 400);
    assert.deepEqual(
      error.fieldViolations.map((v) => [v.field, v.description]),
      [["userId", "required"], ["surfaces[0].surface", "required"]],
    );
    assert.equal(error.detail(ErrorInfoSchema)?.reason, "R");
    assert.equal(error.status.details.length, 2);
    assert.equal(
      error.message,
      "INVALID_ARGUMENT (HTTP 400): the request has 2 invalid fields\n  userId: required\n  surfaces[0].surface: required",
    );
  });

  test("a Status whose detail type is unknown keeps its code and message", async () => {
    const body = {
      code: 9,
      message: "not now",
      details: [{ "@type": "type.googleapis.com/example.Unknown", x: 1 }],
    };
    server.script(json(400, body));
    const error = await rejection(client.getTreatments(REQUEST));
    assert.equal(error.code, Code.FAILED_PRECONDITION);
    assert.equal(error.message, "FAILED_PRECONDITION (HTTP 400): not now");
  });
});

describe("a request that is not the method's", () => {
  const cases: [string, unknown, RegExp][] = [
    ["another message", create(TagPbSchema, { name: "t" }), /got a io\.auxia\.decision\.model\.TagPb$/],
    ["a field it does not have", { ...REQUEST, colour: "red" }, /it has no field colour$/],
    ["a nested field it does not have", { ...REQUEST, surfaces: [{ surface: "S", size: 3 }] }, /no field surfaces\[0\]\.size$/],
    ["a value of the wrong type", { ...REQUEST, userId: 5 }, /user_id to JSON: expected string, got 5$/],
    ["not an object", "GetTreatments", /got string$/],
  ];
  for (const [what, request, message] of cases) {
    test(`${what}: a TypeError naming it, and nothing sent`, async () => {
      await assert.rejects(client.getTreatments(request as never), (error: Error) => {
        assert.ok(error instanceof TypeError);
        assert.match(error.message, /^GetTreatments takes a io\.auxia\.decision\.model\.GetTreatmentsRequest: /);
        assert.match(error.message, message);
        return true;
      });
      assert.equal(server.received.length, 0);
    });
  }
});

describe("createClient", () => {
  test("refuses a base URL with credentials or a query, without repeating it", () => {
    for (const baseUrl of [`https://user:${KEY}@example.com`, `https://example.com/?key=${KEY}`]) {
      assert.throws(
        () => createClient({ baseUrl, apiKey: KEY }),
        (error: Error) => !error.message.includes(KEY) && /must not carry credentials/.test(error.message),
      );
    }
  });

  test("without a key, one line says how to give one", () => {
    const saved = process.env["AUXIA_API_KEY"];
    delete process.env["AUXIA_API_KEY"];
    try {
      assert.throws(() => createClient({ baseUrl: server.url }), {
        message: "no API key: pass apiKey or set the AUXIA_API_KEY environment variable",
      });
    } finally {
      if (saved !== undefined) {
        process.env["AUXIA_API_KEY"] = saved;
      }
    }
  });

  test("a key no header can carry is refused without showing it", () => {
    for (const key of ["S3CRET_KEY\n", " S3CRET_KEY", "S3CRET\u0000KEY", "S3CRÉT_KEY"]) {
      assert.throws(
        () => createClient({ apiKey: key, baseUrl: server.url }),
        (error: unknown) =>
          error instanceof TypeError &&
          error.message.startsWith("the x-api-key key holds a character a header cannot carry") &&
          !error.message.includes("S3CR"),
      );
    }
  });

  test("reads AUXIA_BASE_URL and AUXIA_API_KEY, else calls production", async () => {
    const saved = { ...process.env };
    try {
      process.env["AUXIA_BASE_URL"] = server.url;
      process.env["AUXIA_API_KEY"] = KEY;
      server.script(answer(200, OK_BODY));
      await createClient().getTreatments(REQUEST);
      assert.equal(server.received[0]?.headers["x-api-key"], KEY);
      delete process.env["AUXIA_BASE_URL"];
      assert.equal(createClient().baseUrl, "https://apis.auxia.io");
    } finally {
      process.env = saved;
    }
  });

  test("sends with the fetch it is given, a message as the request", async () => {
    const seen: string[] = [];
    const fetch: typeof globalThis.fetch = async (input, init) => {
      seen.push(String(input));
      assert.equal(new Headers(init?.headers).get("x-api-key"), KEY);
      return new Response(OK_BODY, { status: 200 });
    };
    const custom = createClient({ baseUrl: "https://auxia.example", apiKey: KEY, fetch });
    const response = await custom.getTreatments(create(GetTreatmentsRequestSchema, REQUEST));
    assert.equal(response.responseId, "r1");
    assert.deepEqual(seen, ["https://auxia.example/v1/GetTreatments"]);
  });
});
