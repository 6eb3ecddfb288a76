package io.auxia.decision.client;

import com.google.api.AnnotationsProto;
import com.google.api.HttpRule;
import com.google.protobuf.Descriptors.FileDescriptor;
import com.google.protobuf.Descriptors.MethodDescriptor;
import com.google.protobuf.Descriptors.ServiceDescriptor;
import com.google.protobuf.Message;
import io.auxia.decision.model.GetAllTreatmentsRequest;
import io.auxia.decision.model.GetAllTreatmentsResponse;
import io.auxia.decision.model.GetDataFieldsByParamsRequest;
import io.auxia.decision.model.GetDataFieldsByParamsResponse;
import io.auxia.decision.model.GetTreatmentRequest;
import io.auxia.decision.model.GetTreatmentResponse;
import io.auxia.decision.model.GetTreatmentsRequest;
import io.auxia.decision.model.GetTreatmentsResponse;
import io.auxia.decision.model.InsertTreatmentRequest;
import io.auxia.decision.model.InsertTreatmentResponse;
import io.auxia.decision.model.LogTreatmentInteractionRequest;
import io.auxia.decision.model.LogTreatmentInteractionResponse;
import io.auxia.decision.model.TreatmentDecisionServiceProto;
import io.auxia.decision.model.TreatmentInteractionServiceProto;
import io.auxia.decision.model.TreatmentManagementServiceProto;
import io.auxia.decision.model.UpdateTreatmentRequest;
import io.auxia.decision.model.UpdateTreatmentResponse;
import java.io.IOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A client of the Auxia REST API: one method per RPC, proto3 JSON over {@code java.net.http}.
 *
 * <p>Each RPC's HTTP path is read from its {@code google.api.http} rule. Every method throws
 * {@link ApiError} on failure, after the retries of its {@link RetryPolicy} (the Python client's).
 * The client is thread-safe.
 *
 * <pre>{@code
 * AuxiaClient client = AuxiaClient.builder().build(); // AUXIA_BASE_URL, AUXIA_API_KEY
 * GetTreatmentsResponse response = client.getTreatments(request);
 * }</pre>
 */
public final class AuxiaClient {
  /** The environment variable of the API key. */
  public static final String API_KEY_ENV = "AUXIA_API_KEY";

  /** The environment variable of the base URL. */
  public static final String BASE_URL_ENV = "AUXIA_BASE_URL";

  /** Where the Auxia API is served. */
  public static final String DEFAULT_BASE_URL = "https://apis.auxia.io";

  private static final Map<String, Route> ROUTES = routes();

  private final String baseUrl;
  private final Map<String, String> headers;
  private final RetryPolicy retry;
  private final ProtoJsonHttp transport;
  private final DriftReports drift;

  private AuxiaClient(Builder builder) {
    String key = builder.apiKey != null ? builder.apiKey : System.getenv(API_KEY_ENV);
    if (key == null || key.isEmpty()) {
      throw new IllegalArgumentException(
          "no API key: call apiKey(...) or set the " + API_KEY_ENV + " environment variable");
    }
    Sendable.checkKey(key, "the API key");
    String url = builder.baseUrl;
    if (url == null || url.isEmpty()) {
      url = Optional.ofNullable(System.getenv(BASE_URL_ENV)).filter(s -> !s.isEmpty())
          .orElse(DEFAULT_BASE_URL);
    }
    Sendable.checkBaseUrl(url);
    this.baseUrl = url.replaceAll("/+$", "");
    this.headers = Map.of("x-api-key", key);
    this.retry = builder.retry;
    HttpClient http =
        builder.http != null
            ? builder.http
            : HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    this.transport = new ProtoJsonHttp(http, builder.timeout);
    this.drift = new DriftReports(builder.onDrift, builder.strictResponses);
  }

  /** {@return a builder; by default it reads {@code AUXIA_BASE_URL} and {@code AUXIA_API_KEY}} */
  public static Builder builder() {
    return new Builder();
  }

  /** {@return the base URL the client sends to} */
  public String baseUrl() {
    return baseUrl;
  }

  /** {@return the retry policy} */
  public RetryPolicy retryPolicy() {
    return retry;
  }

  /**
   * {@return how many answers held schema drift, by RPC name, then by place (the JSON path with
   * {@code [*]} for indexes and map keys): a copy as of now}
   */
  public Map<String, Map<String, Long>> drift() {
    return drift.counts();
  }

  /**
   * Decides which treatments a user gets on each surface asked.
   *
   * @param request the request
   * @return the decision
   * @throws ApiError when the call fails
   */
  public GetTreatmentsResponse getTreatments(GetTreatmentsRequest request) {
    return call("GetTreatments", request, GetTreatmentsResponse.getDefaultInstance());
  }

  /**
   * Logs what a user did with a treatment.
   *
   * @param request the interaction
   * @return the (empty) answer
   * @throws ApiError when the call fails
   */
  public LogTreatmentInteractionResponse logTreatmentInteraction(
      LogTreatmentInteractionRequest request) {
    return call(
        "LogTreatmentInteraction", request, LogTreatmentInteractionResponse.getDefaultInstance());
  }

  /**
   * Creates a treatment with one version.
   *
   * @param request the treatment
   * @return the treatment created
   * @throws ApiError when the call fails
   */
  public InsertTreatmentResponse insertTreatment(InsertTreatmentRequest request) {
    return call("InsertTreatment", request, InsertTreatmentResponse.getDefaultInstance());
  }

  /**
   * Updates a treatment.
   *
   * @param request the change
   * @return the treatment updated
   * @throws ApiError when the call fails
   */
  public UpdateTreatmentResponse updateTreatment(UpdateTreatmentRequest request) {
    return call("UpdateTreatment", request, UpdateTreatmentResponse.getDefaultInstance());
  }

  /**
   * Resolves data fields by their parameters.
   *
   * @param request the parameters
   * @return the data fields
   * @throws ApiError when the call fails
   */
  public GetDataFieldsByParamsResponse getDataFields(GetDataFieldsByParamsRequest request) {
    return call("GetDataFields", request, GetDataFieldsByParamsResponse.getDefaultInstance());
  }

  /**
   * Reads one treatment.
   *
   * @param request which treatment
   * @return the treatment
   * @throws ApiError when the call fails
   */
  public GetTreatmentResponse getTreatment(GetTreatmentRequest request) {
    return call("GetTreatment", request, GetTreatmentResponse.getDefaultInstance());
  }

  /**
   * Reads every treatment of a project.
   *
   * @param request which project
   * @return the treatments
   * @throws ApiError when the call fails
   */
  public GetAllTreatmentsResponse getAllTreatments(GetAllTreatmentsRequest request) {
    return call("GetAllTreatments", request, GetAllTreatmentsResponse.getDefaultInstance());
  }

  /**
   * Calls an RPC by its short name ({@code InsertTreatment}), with retries.
   *
   * @param method the RPC's short name
   * @param request its request message
   * @param prototype any message of its response type
   * @param <M> the response type
   * @return the response
   * @throws ApiError when the call fails
   * @throws IllegalArgumentException when the method is not an RPC of the API or the request is
   *     not its request type
   */
  public <M extends Message> M call(String method, Message request, M prototype) {
    Route route = ROUTES.get(method);
    if (route == null) {
      throw new IllegalArgumentException(
          method + " is not an RPC of the Auxia API: one of " + String.join(", ", ROUTES.keySet()));
    }
    String expected = route.method.getInputType().getFullName();
    if (!request.getDescriptorForType().getFullName().equals(expected)) {
      throw new IllegalArgumentException(
          method + " takes a " + expected + ", got "
              + request.getDescriptorForType().getFullName());
    }
    URI uri = URI.create(baseUrl + route.path);
    String body = ProtoJsonHttp.body(method, request);
    for (int attempt = 1; ; attempt++) {
      Optional<Duration> delay;
      try {
        HttpResponse<byte[]> answer = transport.post(uri, headers, body);
        delay = delayAfterStatus(answer, attempt);
        if (delay.isEmpty()) {
          return decoded(method, answer, prototype);
        }
      } catch (IOException error) {
        String mismatch = ProtoJsonHttp.protocolMismatch(error);
        if (mismatch != null) {
          throw ApiError.withoutAnswer(
              com.google.rpc.Code.UNAVAILABLE,
              method + " failed: " + mismatch + ": " + ProtoJsonHttp.describe(error),
              error);
        }
        delay = delayAfterError(method, error, attempt);
        if (delay.isEmpty()) {
          String tries = attempt + (attempt == 1 ? " attempt" : " attempts");
          throw ApiError.withoutAnswer(
              ProtoJsonHttp.codeOf(error),
              method + " failed after " + tries + ": " + ProtoJsonHttp.describe(error),
              error);
        }
      } catch (InterruptedException error) {
        Thread.currentThread().interrupt();
        throw ApiError.withoutAnswer(
            com.google.rpc.Code.CANCELLED, method + " was interrupted", error);
      }
      sleep(method, delay.get());
    }
  }

  /** Reads a final answer: its message, with its schema drift reported, or its error. */
  private <M extends Message> M decoded(String method, HttpResponse<byte[]> answer, M prototype) {
    int status = answer.statusCode();
    if (status < 200 || status >= 300) {
      return ProtoJsonHttp.decode(answer, prototype); // throws the answer's ApiError
    }
    List<Drift> drifts =
        Drift.find(new String(answer.body(), StandardCharsets.UTF_8), prototype.getDescriptorForType());
    M message;
    try {
      message = ProtoJsonHttp.decode(answer, prototype);
    } catch (ApiError unreadable) {
      drift.report(method, drifts, false); // counted and passed on; the error says it
      throw unreadable;
    }
    if (!drifts.isEmpty()) {
      drift.report(method, drifts, true);
      if (drift.strict()) {
        throw DriftReports.error(method, drifts, status);
      }
    }
    return message;
  }

  private Optional<Duration> delayAfterStatus(HttpResponse<byte[]> answer, int attempt) {
    if (!retry.retryHttpStatuses().contains(answer.statusCode())
        || attempt >= retry.maxAttempts()) {
      return Optional.empty();
    }
    Optional<Duration> asked =
        RetryPolicy.retryAfter(answer.headers().firstValue("retry-after").orElse(null));
    if (asked.isPresent()) {
      return asked.get().compareTo(retry.maxRetryAfter()) <= 0 ? asked : Optional.empty();
    }
    return Optional.of(retry.backoff(attempt));
  }

  private Optional<Duration> delayAfterError(String method, IOException error, int attempt) {
    if (attempt >= retry.maxAttempts()) {
      return Optional.empty();
    }
    boolean notSent = error instanceof ConnectException
        || error instanceof HttpConnectTimeoutException;
    if (notSent || retry.safeToRepeat().contains(method)) {
      return Optional.of(retry.backoff(attempt));
    }
    return Optional.empty();
  }

  private static void sleep(String method, Duration delay) {
    try {
      Thread.sleep(delay.toMillis(), delay.toNanosPart() % 1_000_000);
    } catch (InterruptedException error) {
      Thread.currentThread().interrupt();
      throw ApiError.withoutAnswer(
          com.google.rpc.Code.CANCELLED, method + " was interrupted", error);
    }
  }

  /** The API's routes, by RPC short name, read from the services' google.api.http rules. */
  private static Map<String, Route> routes() {
    Map<String, Route> routes = new HashMap<>();
    List<FileDescriptor> files =
        List.of(
            TreatmentDecisionServiceProto.getDescriptor(),
            TreatmentInteractionServiceProto.getDescriptor(),
            TreatmentManagementServiceProto.getDescriptor());
    for (FileDescriptor file : files) {
      for (ServiceDescriptor service : file.getServices()) {
        for (MethodDescriptor method : service.getMethods()) {
          HttpRule rule = method.getOptions().getExtension(AnnotationsProto.http);
          if (rule.getPatternCase() == HttpRule.PatternCase.POST) {
            routes.put(method.getName(), new Route(method, rule.getPost()));
          }
        }
      }
    }
    return Map.copyOf(routes);
  }

  /** One RPC and the path its HTTP rule gives it. */
  private static final class Route {
    final MethodDescriptor method;
    final String path;

    Route(MethodDescriptor method, String path) {
      this.method = method;
      this.path = path;
    }
  }

  /** Configures an {@link AuxiaClient}. */
  public static final class Builder {
    private String baseUrl;
    private String apiKey;
    private RetryPolicy retry = RetryPolicy.defaults();
    private Duration timeout = Duration.ofSeconds(10);
    private HttpClient http;
    private DriftListener onDrift;
    private boolean strictResponses;

    private Builder() {}

    /**
     * Sets where the API is served.
     *
     * @param url the base URL; by default {@code AUXIA_BASE_URL}, else {@code
     *     https://apis.auxia.io}
     * @return this builder
     */
    public Builder baseUrl(String url) {
      this.baseUrl = url;
      return this;
    }

    /**
     * Sets the API key, sent only in the {@code x-api-key} header.
     *
     * @param key the key; by default {@code AUXIA_API_KEY}
     * @return this builder
     */
    public Builder apiKey(String key) {
      this.apiKey = key;
      return this;
    }

    /**
     * Sets when a call is sent again.
     *
     * @param policy the policy; by default {@link RetryPolicy#defaults()}
     * @return this builder
     */
    public Builder retryPolicy(RetryPolicy policy) {
      this.retry = policy;
      return this;
    }

    /**
     * Sets how long one attempt may take, from sending to the end of the answer.
     *
     * @param timeout the time; by default 10 s
     * @return this builder
     */
    public Builder timeout(Duration timeout) {
      this.timeout = timeout;
      return this;
    }

    /**
     * Sets the HTTP client to send with (its own settings apply: proxy, TLS, executor).
     *
     * @param http the client; by default one with a 5 s connect timeout
     * @return this builder
     */
    public Builder httpClient(HttpClient http) {
      this.http = http;
      return this;
    }

    /**
     * Returns the client.
     *
     * @return the client
     * @throws IllegalArgumentException when no API key is given nor in the environment
     */
    public AuxiaClient build() {
      return new AuxiaClient(this);
    }

    /**
     * Sets who is told of every schema drift of every answer: a field, an enum value (a name, or a
     * number its enum does not name) or a JSON type the schema does not know. Drift is also
     * counted ({@link AuxiaClient#drift()}) and logged once per RPC and place, as a warning of the
     * {@code io.auxia.decision.client.drift} {@link System.Logger}.
     *
     * @param listener the listener; by default none
     * @return this builder
     */
    public Builder onDrift(DriftListener listener) {
      this.onDrift = listener;
      return this;
    }

    /**
     * Makes an answer with schema drift an {@link ApiError} ({@code UNKNOWN}, a {@code
     * BadRequest} naming each path) rather than a warning: for your own tests against the local
     * server.
     *
     * @param strict whether drift fails the call; by default false
     * @return this builder
     */
    public Builder strictResponses(boolean strict) {
      this.strictResponses = strict;
      return this;
    }
  }
}
