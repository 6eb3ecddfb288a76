import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.protobuf.Timestamp;
import com.google.rpc.BadRequest;
import com.google.rpc.Code;
import io.auxia.decision.client.ApiError;
import io.auxia.decision.client.AuxiaClient;
import io.auxia.decision.client.Drift;
import io.auxia.decision.client.RetryPolicy;
import io.auxia.decision.client.Validation;
import io.auxia.decision.emulator.v1.Clock;
import io.auxia.decision.emulator.v1.JournalEntry;
import io.auxia.decision.emulator.v1.ListJournalRequest;
import io.auxia.decision.emulator.v1.ListRecentDecisionsRequest;
import io.auxia.decision.emulator.v1.ProjectView;
import io.auxia.decision.emulator.v1.Verdict;
import io.auxia.decision.model.DataFieldParams;
import io.auxia.decision.model.GetAllTreatmentsRequest;
import io.auxia.decision.model.GetDataFieldsByParamsRequest;
import io.auxia.decision.model.GetTreatmentRequest;
import io.auxia.decision.model.GetTreatmentsRequest;
import io.auxia.decision.model.InsertTreatmentRequest;
import io.auxia.decision.model.LogTreatmentInteractionRequest;
import io.auxia.decision.model.SurfaceRequest;
import io.auxia.decision.testing.AuxiaEmulator;
import io.auxia.decision.testing.EmulatorAdmin;
import com.sun.net.httpserver.HttpServer;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The jar against a running emulator: the client, its typed errors and retries, the admin API. */
class JarTest {
  private static final Duration QUICK = Duration.ofMillis(1);
  private static AuxiaEmulator auxia;

  @BeforeAll
  static void startAuxia() {
    auxia = AuxiaEmulator.builder().command(System.getProperty("auxia.command")).start();
  }

  @AfterAll
  static void stopAuxia() {
    auxia.close();
  }

  @BeforeEach
  void reset() {
    auxia.admin().reset();
  }

  private static GetTreatmentsRequest.Builder cartRequest(String userId) {
    return GetTreatmentsRequest.newBuilder()
        .setProjectId(auxia.projectId())
        .setUserId(userId)
        .addSurfaces(SurfaceRequest.newBuilder().setSurface("CART_SCREEN"));
  }

  private static AuxiaClient client(RetryPolicy retry) {
    return AuxiaClient.builder()
        .baseUrl(auxia.baseUrl())
        .apiKey(auxia.apiKey())
        .retryPolicy(retry)
        .build();
  }

  @Test
  void theEmulatorSaysWhereItIsAndWhichKeysOpenIt() {
    assertTrue(auxia.baseUrl().startsWith("http://127.0.0.1:"), auxia.baseUrl());
    assertTrue(auxia.grpcTarget().startsWith("127.0.0.1:"), auxia.grpcTarget());
    assertEquals("PROJECT_ID", auxia.projectId());
    assertEquals("TEST_API_KEY", auxia.apiKey());
    assertEquals("EMULATOR_ADMIN_KEY", auxia.adminKey().orElseThrow());
    assertEquals(
        List.of("AUXIA_BASE_URL", "AUXIA_GRPC_TARGET", "AUXIA_API_KEY", "AUXIA_EMULATOR_ADMIN_KEY"),
        List.copyOf(auxia.environment().keySet()));
  }

  /** Runs EnvClient in a JVM of its own, with an environment; returns what it printed. */
  private static String envClient(Map<String, String> environment) throws Exception {
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    ProcessBuilder builder =
        new ProcessBuilder(java, "-cp", System.getProperty("auxia.classpath"), "EnvClient");
    builder.environment().remove("AUXIA_BASE_URL");
    builder.environment().remove("AUXIA_API_KEY");
    builder.environment().putAll(environment);
    Process process = builder.redirectErrorStream(true).start();
    String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertEquals(0, process.waitFor(), out);
    return out.strip();
  }

  @Test
  void aProcessGivenTheEnvironmentFindsTheEmulator() throws Exception {
    assertEquals("CART_REMINDER", envClient(auxia.environment()));
    assertEquals(
        "no API key: call apiKey(...) or set the AUXIA_API_KEY environment variable",
        envClient(Map.of()));
  }

  @Test
  void aKeyNoHeaderCanCarryOrABaseUrlWithCredentialsIsRefusedUnshown() {
    IllegalArgumentException key =
        assertThrows(
            IllegalArgumentException.class,
            () -> AuxiaClient.builder().baseUrl(auxia.baseUrl()).apiKey("S3CRET_KEY\n").build());
    assertTrue(key.getMessage().startsWith("the API key holds a character a header cannot"));
    assertFalse(key.getMessage().contains("S3CRET"));
    IllegalArgumentException url =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                AuxiaClient.builder()
                    .baseUrl("http://user:pw_S3CRET@127.0.0.1:1")
                    .apiKey("KEY")
                    .build());
    assertEquals(
        "the base URL carries credentials, and a key goes in its header (the URL is not shown)",
        url.getMessage());
  }

  @Test
  void theAdminClientRefusesAKeyOrABaseUrlAsTheApiClientDoes() {
    IllegalArgumentException key =
        assertThrows(
            IllegalArgumentException.class,
            () -> new EmulatorAdmin(auxia.baseUrl(), "S3CRET_ADMIN\n"));
    assertTrue(key.getMessage().startsWith("the admin key holds a character a header cannot"));
    assertFalse(key.getMessage().contains("S3CRET"));
    IllegalArgumentException url =
        assertThrows(
            IllegalArgumentException.class,
            () -> new EmulatorAdmin("http://u:p@127.0.0.1:1?key=S3CRET", "ADMIN"));
    assertFalse(url.getMessage().contains("S3CRET"), url.getMessage());
    IllegalArgumentException query =
        assertThrows(
            IllegalArgumentException.class,
            () -> new EmulatorAdmin(auxia.baseUrl() + "/?api-key=S3CRET", "ADMIN"));
    assertFalse(query.getMessage().contains("S3CRET"), query.getMessage());
    IllegalArgumentException scheme =
        assertThrows(
            IllegalArgumentException.class,
            () -> new EmulatorAdmin("ftp://127.0.0.1/?api-key=S3CRET", "ADMIN"));
    assertFalse(scheme.getMessage().contains("S3CRET"), scheme.getMessage());
  }

  @Test
  void anAnswerThatStallsAfterItsHeadersEndsAtTheTimeout() throws Exception {
    HttpServer stalling = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
    CountDownLatch released = new CountDownLatch(1);
    stalling.createContext(
        "/",
        exchange -> {
          exchange.getResponseHeaders().add("content-type", "application/json");
          exchange.sendResponseHeaders(200, 0); // chunked: the body follows, or not
          exchange.getResponseBody().write("{".getBytes(StandardCharsets.UTF_8));
          exchange.getResponseBody().flush();
          try {
            released.await(30, TimeUnit.SECONDS);
          } catch (InterruptedException error) {
            Thread.currentThread().interrupt();
          }
          exchange.close();
        });
    stalling.setExecutor(Executors.newCachedThreadPool());
    stalling.start();
    try {
      AuxiaClient client =
          AuxiaClient.builder()
              .baseUrl("http://127.0.0.1:" + stalling.getAddress().getPort())
              .apiKey("K")
              .timeout(Duration.ofMillis(500))
              .retryPolicy(RetryPolicy.none())
              .build();
      long began = System.nanoTime();
      ApiError error =
          assertThrows(ApiError.class, () -> client.getTreatments(cartRequest("u").build()));
      Duration took = Duration.ofNanos(System.nanoTime() - began);
      assertEquals(Code.DEADLINE_EXCEEDED, error.code(), error.getMessage());
      assertTrue(took.compareTo(Duration.ofSeconds(10)) < 0, took.toString());
    } finally {
      released.countDown();
      stalling.stop(0);
    }
  }

  /** A server that answers every call with one JSON text: what a newer API might answer. */
  private static HttpServer answering(String json) throws Exception {
    HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
    server.createContext(
        "/",
        exchange -> {
          byte[] body = json.getBytes(StandardCharsets.UTF_8);
          exchange.getResponseHeaders().add("content-type", "application/json");
          exchange.sendResponseHeaders(200, body.length);
          exchange.getResponseBody().write(body);
          exchange.close();
        });
    server.start();
    return server;
  }

  private static final String DRIFTED =
      "{\"treatment\": {\"treatmentId\": \"T1\", \"status\": \"BRAND_NEW_STATUS\","
          + " \"newField\": {\"a\": 1}, \"versions\": [{\"status\": \"LIVE\", \"weight\": 2},"
          + " {\"weight\": 3}], \"name\": 7}}";

  private static GetTreatmentRequest treatmentRequest() {
    return GetTreatmentRequest.newBuilder().setProjectId("P").setTreatmentId("T1").build();
  }

  @Test
  void anAnswerWithSchemaDriftIsReadAndReportedByPlace() throws Exception {
    HttpServer server = answering(DRIFTED);
    java.util.logging.Logger log = java.util.logging.Logger.getLogger("io.auxia.decision.client.drift");
    List<String> warned = new java.util.concurrent.CopyOnWriteArrayList<>();
    java.util.logging.Handler handler =
        new java.util.logging.Handler() {
          @Override
          public void publish(java.util.logging.LogRecord record) {
            warned.add(record.getLevel() + " " + record.getMessage());
          }

          @Override
          public void flush() {}

          @Override
          public void close() {}
        };
    log.addHandler(handler);
    try {
      List<String> told = new java.util.ArrayList<>();
      AuxiaClient client =
          AuxiaClient.builder()
              .baseUrl("http://127.0.0.1:" + server.getAddress().getPort())
              .apiKey("K")
              .onDrift((method, drift) -> told.add(method + " " + drift))
              .build();
      assertEquals("T1", client.getTreatment(treatmentRequest()).getTreatment().getTreatmentId());
      client.getTreatment(treatmentRequest());
      assertEquals(
          List.of(
              "GetTreatment treatment.status: unknown_enum_value: treatment.status=\"BRAND_NEW_STATUS\""
                  + " is not a value of Status",
              "GetTreatment treatment.newField: unknown_field: \"newField\" is not a field of"
                  + " TreatmentPb",
              "GetTreatment treatment.versions[0].weight: unknown_field: \"weight\" is not a field"
                  + " of TreatmentVersionPb",
              "GetTreatment treatment.versions[1].weight: unknown_field: \"weight\" is not a field"
                  + " of TreatmentVersionPb",
              "GetTreatment treatment.name: wrong_json_type: expected a string, got a number"),
          told.subList(0, 5));
      assertEquals(10, told.size());
      assertEquals(
          Map.of(
              "GetTreatment",
              Map.of(
                  "treatment.status", 2L,
                  "treatment.newField", 2L,
                  "treatment.versions[*].weight", 2L,
                  "treatment.name", 2L)),
          client.drift());
      // A warning once per RPC and place, whatever the number of answers or indexes.
      assertEquals(4, warned.size(), warned.toString());
      assertTrue(
          warned.get(0).startsWith(
              "WARNING GetTreatment answered what the schema does not know (unknown_enum_value at"
                  + " treatment.status)"),
          warned.get(0));
    } finally {
      log.removeHandler(handler);
      server.stop(0);
    }
  }

  @Test
  void strictResponsesMakeDriftAnApiErrorNamingEachPath() throws Exception {
    HttpServer server = answering(DRIFTED);
    try {
      AuxiaClient client =
          AuxiaClient.builder()
              .baseUrl("http://127.0.0.1:" + server.getAddress().getPort())
              .apiKey("K")
              .strictResponses(true)
              .build();
      ApiError error = assertThrows(ApiError.class, () -> client.getTreatment(treatmentRequest()));
      assertEquals(Code.UNKNOWN, error.code());
      assertEquals(200, error.httpStatus().getAsInt());
      assertTrue(
          error.getMessage().contains("unknown_enum_value at treatment.status")
              && error.getMessage().contains("(and 4 more)"),
          error.getMessage());
      assertEquals(
          List.of(
              "treatment.status",
              "treatment.newField",
              "treatment.versions[0].weight",
              "treatment.versions[1].weight",
              "treatment.name"),
          error.fieldViolations().stream()
              .map(BadRequest.FieldViolation::getField)
              .collect(Collectors.toList()));
    } finally {
      server.stop(0);
    }
  }

  @Test
  void valuesOfTheRightJsonTypeTheirFieldsCannotTakeAreInvalidValuesAsInPython() throws Exception {
    // The Python package's find_drift finds these very drifts (tests/unit/test_drift.py).
    Path file = Path.of(System.getProperty("auxia.fixtures"), "drift", "invalid_values.json");
    JsonObject fixture =
        JsonParser.parseString(Files.readString(file, StandardCharsets.UTF_8)).getAsJsonObject();
    assertEquals(DataFieldParams.getDescriptor().getFullName(), fixture.get("type").getAsString());
    List<Drift> expected = new ArrayList<>();
    for (JsonElement drift : fixture.getAsJsonArray("drifts")) {
      JsonObject one = drift.getAsJsonObject();
      expected.add(
          new Drift(
              one.get("path").getAsString(),
              one.get("kind").getAsString(),
              one.get("detail").getAsString()));
    }
    assertTrue(expected.size() > 5);
    assertEquals(
        expected,
        assertTimeoutPreemptively(
            Duration.ofSeconds(10),
            () ->
                Drift.find(fixture.get("document").toString(), DataFieldParams.getDescriptor())));
  }

  @Test
  void numbersOfHugeExponentsAreReadAtOnce() {
    // Digits are never made of them: 10^999999999 would take minutes, or all the memory.
    String document =
        "{\"treatmentDataFieldParams\": {\"treatmentInteractionType\": 1e999999999,"
            + " \"treatmentId\": \"t\"}}";
    List<Drift> found =
        assertTimeoutPreemptively(
            Duration.ofSeconds(10), () -> Drift.find(document, DataFieldParams.getDescriptor()));
    assertEquals(1, found.size(), found.toString());
    assertEquals("treatmentDataFieldParams.treatmentInteractionType", found.get(0).path());
    assertEquals(Drift.INVALID_VALUE, found.get(0).kind()); // a double past the doubles, as Python
    assertEquals("expected an enum value name or an integer, got inf", found.get(0).detail());
  }

  @Test
  void anAnswerTheSchemaKnowsHasNoDrift() {
    AuxiaClient client = auxia.client();
    client.getTreatments(cartRequest("no-drift").build());
    assertEquals(Map.of(), client.drift());
  }

  /** A TCP server that answers every connection with the same bytes, counting connections. */
  private static ServerSocket sayingOnly(byte[] reply, AtomicInteger connections) throws Exception {
    ServerSocket server = new ServerSocket(0, 50, java.net.InetAddress.getByName("127.0.0.1"));
    Thread accepting =
        new Thread(
            () -> {
              while (!server.isClosed()) {
                try (java.net.Socket socket = server.accept()) {
                  connections.incrementAndGet();
                  socket.getInputStream().read(new byte[65536]);
                  socket.getOutputStream().write(reply);
                } catch (java.io.IOException error) {
                  // closed, or the client went away
                }
              }
            });
    accepting.setDaemon(true);
    accepting.start();
    return server;
  }

  @Test
  void anAnswerThatIsNotHttpOrTlsToPlainHttpIsNotRetriedAndSaysWhy() throws Exception {
    byte[] tls = new byte[51];
    byte[] head = {0x16, 0x03, 0x01, 0x00, 0x2a, 0x02, 0x00, 0x00, 0x26, 0x03, 0x03};
    System.arraycopy(head, 0, tls, 0, head.length);
    byte[] plain = "HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n".getBytes(StandardCharsets.UTF_8);
    Object[][] cases = {
      {"http", tls, "GetTreatment failed: the answer is not HTTP (is the server TLS? then use an https:// URL)"},
      {"https", plain, "GetTreatment failed: TLS failed (is the server plain HTTP? then use an http:// URL)"},
    };
    for (Object[] each : cases) {
      AtomicInteger connections = new AtomicInteger();
      try (ServerSocket server = sayingOnly((byte[]) each[1], connections)) {
        AuxiaClient client =
            AuxiaClient.builder()
                .baseUrl(each[0] + "://127.0.0.1:" + server.getLocalPort())
                .apiKey("K")
                .retryPolicy(RetryPolicy.defaults().withBackoff(QUICK, QUICK))
                .build();
        ApiError error =
            assertThrows(ApiError.class, () -> client.getTreatment(treatmentRequest()));
        assertEquals(Code.UNAVAILABLE, error.code());
        assertTrue(error.getMessage().contains((String) each[2]), error.getMessage());
        assertEquals(1, connections.get(), (String) each[0]);
      }
    }
  }

  @Test
  void anEvolvedAnswerIsDriftAClientOfTheEmulatorCanBeStrictAbout() {
    EmulatorAdmin admin = auxia.admin();
    admin.evolve("GetTreatments", 2);
    List<String> told = new java.util.ArrayList<>();
    AuxiaClient lenient =
        auxia.clientBuilder().onDrift((method, drift) -> told.add(drift.path())).build();
    assertTrue(lenient.getTreatments(cartRequest("evolved").build()).getUserTreatmentsCount() > 0);
    assertTrue(told.contains("evolvedObject"), told.toString());
    AuxiaClient strict = auxia.clientBuilder().strictResponses(true).build();
    ApiError error =
        assertThrows(ApiError.class, () -> strict.getTreatments(cartRequest("evolved").build()));
    assertEquals(Code.UNKNOWN, error.code());
    assertTrue(
        error.fieldViolations().stream().anyMatch(v -> v.getField().equals("evolvedObject")),
        error.getMessage());
    strict.getTreatments(cartRequest("evolved").build()); // the fault's two calls are over
    assertEquals(0, admin.listFaults().size());
  }

  @Test
  void aFractionFaultAndTheJournalThroughTheTypedCalls() {
    EmulatorAdmin admin = auxia.admin();
    admin.failFraction("GetTreatment", 1.0, Code.UNAVAILABLE, 7);
    AuxiaClient client = client(RetryPolicy.none());
    ApiError error =
        assertThrows(
            ApiError.class,
            () ->
                client.getTreatment(
                    GetTreatmentRequest.newBuilder()
                        .setProjectId(auxia.projectId())
                        .setTreatmentId("CART_REMINDER")
                        .build()));
    assertEquals(Code.UNAVAILABLE, error.code());
    assertEquals(1, admin.clearFaults());
    List<String> methods =
        admin
            .listJournal(ListJournalRequest.newBuilder().setPageSize(1).build()) // pages: 1,000
            .stream()
            .map(JournalEntry::getMethod)
            .collect(Collectors.toList());
    assertTrue(methods.contains("GetTreatment"), methods.toString());
  }

  @Test
  void aRequestWithNoJsonFormIsAnApiErrorAndIsNotSent() {
    InsertTreatmentRequest request =
        InsertTreatmentRequest.newBuilder()
            .setProjectId(auxia.projectId())
            .setStartTimestamp(Timestamp.newBuilder().setSeconds(253_402_300_800L))
            .build();
    ApiError error = assertThrows(ApiError.class, () -> auxia.client().insertTreatment(request));
    assertEquals(Code.INVALID_ARGUMENT, error.code());
    assertTrue(error.httpStatus().isEmpty());
    assertTrue(
        error.getMessage().contains("InsertTreatment was not sent: it has no proto3 JSON form"),
        error.getMessage());
  }

  @Test
  void everyRpcIsReachedByItsHttpRule() {
    AuxiaClient client = auxia.client();
    String project = auxia.projectId();
    assertEquals(
        "CART_REMINDER",
        client.getTreatments(cartRequest("u1").build()).getUserTreatments(0).getTreatmentId());
    List<String> treatments =
        client.getAllTreatments(GetAllTreatmentsRequest.newBuilder().setProjectId(project).build())
            .getTreatmentsList().stream()
            .map(treatment -> treatment.getTreatmentId())
            .collect(Collectors.toList());
    assertTrue(treatments.contains("CART_REMINDER"), treatments.toString());
    assertEquals(
        "CART_REMINDER",
        client.getTreatment(
                GetTreatmentRequest.newBuilder()
                    .setProjectId(project)
                    .setTreatmentId("CART_REMINDER")
                    .build())
            .getTreatment()
            .getTreatmentId());
    GetDataFieldsByParamsRequest fields =
        GetDataFieldsByParamsRequest.newBuilder()
            .setProjectId(project)
            .addDataFieldParams(
                DataFieldParams.newBuilder()
                    .setUserAttributeDataFieldParams(
                        DataFieldParams.UserAttributeDataFieldParams.newBuilder().setPropertyName("country")))
            .build();
    assertEquals(1, client.getDataFields(fields).getDataFieldsCount());
  }

  @Test
  void aBadRequestIsAnApiErrorWithTypedFieldViolations() {
    ApiError error =
        assertThrows(
            ApiError.class,
            () -> auxia.client().getTreatments(cartRequest("").build()));
    assertEquals(Code.INVALID_ARGUMENT, error.code());
    assertEquals(400, error.httpStatus().getAsInt());
    BadRequest details = error.detail(BadRequest.class).orElseThrow();
    assertEquals("userId", details.getFieldViolations(0).getField());
    assertEquals("userId", error.fieldViolations().get(0).getField());
    assertTrue(error.status().getDetails(0).is(BadRequest.class));
    assertTrue(error.getMessage().startsWith("INVALID_ARGUMENT (HTTP 400): userId"),
        error.getMessage());
  }

  @Test
  void checkRequestFindsWhatTheServerRefusesWithoutSendingIt() {
    GetTreatmentsRequest bad = cartRequest("").build();
    ApiError local = assertThrows(ApiError.class, () -> Validation.checkRequest(bad));
    ApiError served = assertThrows(ApiError.class, () -> auxia.client().getTreatments(bad));
    assertEquals(Code.INVALID_ARGUMENT, local.code());
    assertFalse(local.httpStatus().isPresent());
    assertEquals(served.fieldViolations(), local.fieldViolations());
    assertTrue(local.getMessage().startsWith("INVALID_ARGUMENT (no HTTP answer): userId: required"),
        local.getMessage());
    Validation.Result good = Validation.checkRequest(cartRequest("u").build());
    assertTrue(good.ok());
    assertTrue(good.errors().isEmpty() && good.warnings().isEmpty());
  }

  @Test
  void aWrongKeyIsUnauthenticatedAndNeverQuoted() {
    AuxiaClient wrong =
        AuxiaClient.builder().baseUrl(auxia.baseUrl()).apiKey("NOT_A_KEY").build();
    ApiError error = assertThrows(ApiError.class, () -> wrong.getTreatments(cartRequest("u").build()));
    assertEquals(Code.UNAUTHENTICATED, error.code());
    assertEquals(401, error.httpStatus().getAsInt());
    assertFalse(error.getMessage().contains("NOT_A_KEY"), error.getMessage());
  }

  @Test
  void unavailableIsRetriedAsThePythonClientDoes() {
    EmulatorAdmin admin = auxia.admin();
    admin.failNext("GetTreatments", Code.UNAVAILABLE, 3);
    AuxiaClient client = client(RetryPolicy.defaults().withBackoff(QUICK, QUICK));
    assertEquals(1, client.getTreatments(cartRequest("u2").build()).getUserTreatmentsCount());
    assertEquals(List.of(), admin.listFaults()); // the three failures were used up

    admin.failNext("LogTreatmentInteraction", Code.UNAVAILABLE, 1);
    ApiError error =
        assertThrows(
            ApiError.class,
            () ->
                client(RetryPolicy.none())
                    .logTreatmentInteraction(
                        LogTreatmentInteractionRequest.newBuilder()
                            .setProjectId(auxia.projectId())
                            .setTreatmentTrackingId("T1")
                            .setInteractionType(
                                LogTreatmentInteractionRequest.InteractionType.VIEWED)
                            .setInteractionTimeMicros(1_732_312_345_123_456L)
                            .build()));
    assertEquals(Code.UNAVAILABLE, error.code());
    assertEquals(503, error.httpStatus().getAsInt());
  }

  @Test
  void aServerThatIsNotThereIsUnavailableWithoutAnHttpStatus() throws Exception {
    int port;
    try (ServerSocket socket = new ServerSocket(0)) {
      port = socket.getLocalPort();
    }
    AuxiaClient client =
        AuxiaClient.builder()
            .baseUrl("http://127.0.0.1:" + port)
            .apiKey("K")
            .retryPolicy(RetryPolicy.defaults().withBackoff(QUICK, QUICK))
            .build();
    ApiError error = assertThrows(ApiError.class, () -> client.getTreatments(cartRequest("u").build()));
    assertEquals(Code.UNAVAILABLE, error.code());
    assertTrue(error.httpStatus().isEmpty());
    assertTrue(error.getMessage().contains("GetTreatments failed after 4 attempts"),
        error.getMessage());
  }

  @Test
  void anAnswerThatIsNotAStatusKeepsItsHttpStatus() {
    byte[] page = "<html><body>Bad gateway</body></html>".getBytes(StandardCharsets.UTF_8);
    ApiError proxy = ApiError.fromHttpResponse(502, "text/html; charset=utf-8", page);
    assertEquals(Code.UNAVAILABLE, proxy.code());
    assertEquals(502, proxy.httpStatus().getAsInt());
    assertTrue(proxy.getMessage().contains("non-Status body (text/html): <html>"),
        proxy.getMessage());
    byte[] truncated = "{\"code\": 3, \"mess".getBytes(StandardCharsets.UTF_8);
    ApiError cut = ApiError.fromHttpResponse(400, "application/json", truncated);
    assertEquals(Code.INVALID_ARGUMENT, cut.code());
    assertEquals(400, cut.httpStatus().getAsInt());
    byte[] newer = "{\"code\": 42, \"message\": \"a code of a newer API\"}".getBytes(
        StandardCharsets.UTF_8);
    ApiError unknown = ApiError.fromHttpResponse(500, "application/json", newer);
    assertEquals(Code.UNKNOWN, unknown.code());
    assertEquals(42, unknown.status().getCode());
  }

  @Test
  void retryAfterIsReadInSecondsOrAsADate() {
    assertEquals(Duration.ofSeconds(3), RetryPolicy.retryAfter("3").orElseThrow());
    assertEquals(
        Duration.ZERO, RetryPolicy.retryAfter("Wed, 21 Oct 2015 07:28:00 GMT").orElseThrow());
    assertTrue(RetryPolicy.retryAfter("soon").isEmpty());
  }

  @Test
  void aCallOfTheWrongShapeIsRefusedBeforeSending() {
    AuxiaClient client = auxia.client();
    assertThrows(
        IllegalArgumentException.class,
        () -> client.call("GetTreatments", GetTreatmentRequest.getDefaultInstance(),
            GetTreatmentRequest.getDefaultInstance()));
    assertThrows(
        IllegalArgumentException.class,
        () -> client.call("Nope", GetTreatmentRequest.getDefaultInstance(),
            GetTreatmentRequest.getDefaultInstance()));
  }

  @Test
  void theAdminApiMovesTheClockAndExplainsDecisions() {
    EmulatorAdmin admin = auxia.admin();
    Instant then = Instant.parse("2031-05-01T12:00:00Z");
    Clock frozen = admin.freezeClock(then);
    assertTrue(frozen.getFrozen());
    assertEquals(Timestamp.newBuilder().setSeconds(then.getEpochSecond()).build(), frozen.getNow());
    Clock later = admin.advanceClock(Duration.ofHours(1));
    assertEquals(then.getEpochSecond() + 3600, later.getNow().getSeconds());
    assertEquals(later, admin.getClock());
    assertFalse(admin.useRealTime().getFrozen());

    List<Verdict> verdicts = admin.explainDecision(cartRequest("u3").build());
    assertTrue(
        verdicts.stream()
            .anyMatch(v -> v.getTreatmentId().equals("CART_REMINDER")
                && v.getOutcome() == Verdict.Outcome.SERVED),
        verdicts.toString());
    assertEquals(List.of(), admin.listRecentDecisions(ListRecentDecisionsRequest.getDefaultInstance()));
    List<String> projects =
        admin.listProjects().stream().map(ProjectView::getProjectId).collect(Collectors.toList());
    assertTrue(projects.contains("PROJECT_ID"), projects.toString());
  }

  @Test
  void faultsAreArmedListedAndCleared() {
    EmulatorAdmin admin = auxia.admin();
    assertEquals("faults/1", admin.delayNext("GetTreatments", Duration.ofMillis(10), 2).getName());
    admin.failNext("*", Code.INTERNAL, 1);
    assertEquals(2, admin.listFaults().size());
    assertEquals(2, admin.clearFaults());
    assertEquals(List.of(), admin.listFaults());
  }

  @Test
  void theAdminApiTakesNoApiKey() {
    for (String key : List.of("WRONG", auxia.apiKey())) {
      EmulatorAdmin admin = new EmulatorAdmin(auxia.baseUrl(), key);
      ApiError error = assertThrows(ApiError.class, admin::listFaults);
      assertEquals(Code.UNAUTHENTICATED, error.code());
      assertFalse(error.getMessage().contains(key), error.getMessage());
    }
  }
}
