package io.auxia.decision.client;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.util.JsonFormat;
import com.google.rpc.Code;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.net.http.HttpTimeoutException;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Proto3 JSON over HTTP: one POST of a message, and its answer read back as a message or an
 * {@link ApiError}. What {@link AuxiaClient} and the emulator's admin client send with.
 */
public final class ProtoJsonHttp {
  /** The {@code User-Agent} of every call: {@code auxia-decision-api-java/<version>}. */
  public static final String USER_AGENT = "auxia-decision-api-java/" + version();

  private static final JsonFormat.Printer PRINTER =
      JsonFormat.printer().omittingInsignificantWhitespace();
  private static final JsonFormat.Parser PARSER = JsonFormat.parser().ignoringUnknownFields();

  private final HttpClient http;
  private final Duration timeout;

  /**
   * Makes a sender.
   *
   * @param http the HTTP client to send with
   * @param timeout how long each call may take, from sending to the end of the answer
   */
  public ProtoJsonHttp(HttpClient http, Duration timeout) {
    this.http = http;
    this.timeout = timeout;
  }

  /** {@return this library's version (the Python package's), or {@code dev} outside its jar} */
  public static String version() {
    String version = ProtoJsonHttp.class.getPackage().getImplementationVersion();
    return version == null ? "dev" : version;
  }

  /**
   * Sends a message as the JSON body of a POST; returns the answer, whatever its status.
   *
   * @param uri where to send it
   * @param headers headers besides the content type, accept and user agent
   * @param request the message
   * @return the answer, its body read whole
   * @throws ApiError ({@code INVALID_ARGUMENT}) when the message has no proto3 JSON form
   * @throws IOException when no whole answer came (connection refused, reset, timed out)
   * @throws InterruptedException when the thread is interrupted while waiting
   */
  public HttpResponse<byte[]> post(URI uri, Map<String, String> headers, Message request)
      throws IOException, InterruptedException {
    return post(uri, headers, body(uri.getPath(), request));
  }

  /**
   * Sends JSON text as the body of a POST; returns the answer, whatever its status.
   *
   * <p>The timeout covers the whole answer: an answer whose body stalls after its headers ends
   * in an {@link HttpTimeoutException} too.
   *
   * @param uri where to send it
   * @param headers headers besides the content type, accept and user agent
   * @param json the body ({@link #body})
   * @return the answer, its body read whole
   * @throws IOException when no whole answer came (connection refused, reset, timed out)
   * @throws InterruptedException when the thread is interrupted while waiting
   */
  public HttpResponse<byte[]> post(URI uri, Map<String, String> headers, String json)
      throws IOException, InterruptedException {
    HttpRequest.Builder builder =
        HttpRequest.newBuilder(uri)
            .timeout(timeout)
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .header("user-agent", USER_AGENT)
            .POST(HttpRequest.BodyPublishers.ofString(json, StandardCharsets.UTF_8));
    headers.forEach(builder::header);
    // HttpRequest's own timeout ends when the headers arrive; the wait below covers the body.
    CompletableFuture<HttpResponse<byte[]>> answer =
        http.sendAsync(builder.build(), HttpResponse.BodyHandlers.ofByteArray());
    try {
      return answer.get(timeout.toNanos(), TimeUnit.NANOSECONDS);
    } catch (TimeoutException error) {
      answer.cancel(true);
      throw new HttpTimeoutException("no whole answer within " + timeout.toMillis() + " ms");
    } catch (InterruptedException error) {
      answer.cancel(true);
      throw error;
    } catch (ExecutionException error) {
      Throwable cause = error.getCause();
      if (cause instanceof IOException) {
        throw (IOException) cause;
      }
      if (cause instanceof RuntimeException) {
        throw (RuntimeException) cause;
      }
      throw new IOException(cause);
    }
  }

  /**
   * Returns a request as the JSON text of its body, or throws why it cannot be sent.
   *
   * @param what the call, as the error names it ({@code InsertTreatment})
   * @param request the message
   * @return its proto3 JSON
   * @throws ApiError ({@code INVALID_ARGUMENT}, without an HTTP status) when the message has no
   *     proto3 JSON form (a Timestamp after the year 9999, say): nothing was sent
   */
  public static String body(String what, Message request) {
    try {
      return PRINTER.print(request);
    } catch (InvalidProtocolBufferException | IllegalArgumentException error) {
      throw ApiError.withoutAnswer(
          Code.INVALID_ARGUMENT,
          what + " was not sent: it has no proto3 JSON form: " + error.getMessage(),
          error);
    }
  }

  /**
   * Returns the message a successful answer holds, or throws the ApiError an unsuccessful one
   * (or an unreadable body) describes.
   *
   * @param answer the answer
   * @param prototype any message of the expected type (its default instance)
   * @param <M> the expected type
   * @return the message
   * @throws ApiError when the status is not 2xx, or the body is not a message of that type
   */
  public static <M extends Message> M decode(HttpResponse<byte[]> answer, M prototype) {
    int status = answer.statusCode();
    if (status < 200 || status >= 300) {
      String contentType = answer.headers().firstValue("content-type").orElse("");
      throw ApiError.fromHttpResponse(status, contentType, answer.body());
    }
    Message.Builder builder = prototype.newBuilderForType();
    try {
      PARSER.merge(new String(answer.body(), StandardCharsets.UTF_8), builder);
    } catch (InvalidProtocolBufferException | RuntimeException error) {
      throw ApiError.unreadableAnswer(
          status,
          "the answer is not a valid " + prototype.getDescriptorForType().getName() + ": "
              + error.getMessage());
    }
    @SuppressWarnings("unchecked")
    M message = (M) builder.build();
    return message;
  }

  /**
   * Sends one call and returns its answer's message; every failure is an ApiError.
   *
   * @param uri where to send it
   * @param headers headers besides the content type, accept and user agent
   * @param request the message
   * @param prototype any message of the expected answer type
   * @param <M> the expected type
   * @return the answer's message
   * @throws ApiError when the call fails, with or without an answer
   */
  public <M extends Message> M call(
      URI uri, Map<String, String> headers, Message request, M prototype) {
    String json = body(uri.getPath(), request);
    HttpResponse<byte[]> answer;
    try {
      answer = post(uri, headers, json);
    } catch (IOException error) {
      throw ApiError.withoutAnswer(
          codeOf(error), uri.getPath() + " failed: " + describe(error), error);
    } catch (InterruptedException error) {
      Thread.currentThread().interrupt();
      throw ApiError.withoutAnswer(Code.CANCELLED, uri.getPath() + " was interrupted", error);
    }
    return decode(answer, prototype);
  }

  /** {@return the code of a call that got no answer: DEADLINE_EXCEEDED on a timeout} */
  static Code codeOf(IOException error) {
    return error instanceof java.net.http.HttpTimeoutException
        ? Code.DEADLINE_EXCEEDED
        : Code.UNAVAILABLE;
  }

  /**
   * Says what a failed call means when the other end speaks another protocol: TLS failed ({@code
   * https://} to a plain-HTTP port, a certificate refused), or what came back was not HTTP
   * ({@code http://} to a TLS port). Such a call is not retried, as in the Python client.
   *
   * @param error what the call failed with
   * @return the words, or null when it is no such mismatch
   */
  static String protocolMismatch(IOException error) {
    Throwable seen = error;
    for (int depth = 0; seen != null && depth < 8; depth++, seen = seen.getCause()) {
      if (seen instanceof javax.net.ssl.SSLException) {
        return "TLS failed (is the server plain HTTP? then use an http:// URL)";
      }
      String message = seen.getMessage();
      if (message != null && message.startsWith("parsing HTTP/1.1 status line")) {
        return "the answer is not HTTP (is the server TLS? then use an https:// URL)";
      }
    }
    return null;
  }

  /** {@return an exception as one line: its class and message} */
  static String describe(Throwable error) {
    String message = error.getMessage();
    return error.getClass().getSimpleName() + (message == null ? "" : ": " + message);
  }
}
