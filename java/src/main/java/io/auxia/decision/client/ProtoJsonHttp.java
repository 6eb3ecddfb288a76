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
import java.time.Duration;
import java.util.Map;

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
   * @throws IOException when no answer came (connection refused, reset, timed out)
   * @throws InterruptedException when the thread is interrupted while waiting
   */
  public HttpResponse<byte[]> post(URI uri, Map<String, String> headers, Message request)
      throws IOException, InterruptedException {
    HttpRequest.Builder builder =
        HttpRequest.newBuilder(uri)
            .timeout(timeout)
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .header("user-agent", USER_AGENT)
            .POST(HttpRequest.BodyPublishers.ofString(encode(request), StandardCharsets.UTF_8));
    headers.forEach(builder::header);
    return http.send(builder.build(), HttpResponse.BodyHandlers.ofByteArray());
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
    HttpResponse<byte[]> answer;
    try {
      answer = post(uri, headers, request);
    } catch (IOException error) {
      throw ApiError.withoutAnswer(
          codeOf(error), uri.getPath() + " failed: " + describe(error), error);
    } catch (InterruptedException error) {
      Thread.currentThread().interrupt();
      throw ApiError.withoutAnswer(Code.CANCELLED, uri.getPath() + " was interrupted", error);
    }
    return decode(answer, prototype);
  }

  /** {@return proto3 JSON of a message: lowerCamelCase names, int64 as strings, one line} */
  static String encode(Message message) {
    try {
      return PRINTER.print(message);
    } catch (InvalidProtocolBufferException error) {
      throw new IllegalArgumentException(
          "cannot write " + message.getDescriptorForType().getFullName() + " as JSON", error);
    }
  }

  /** {@return the code of a call that got no answer: DEADLINE_EXCEEDED on a timeout} */
  static Code codeOf(IOException error) {
    return error instanceof java.net.http.HttpTimeoutException
        ? Code.DEADLINE_EXCEEDED
        : Code.UNAVAILABLE;
  }

  /** {@return an exception as one line: its class and message} */
  static String describe(Throwable error) {
    String message = error.getMessage();
    return error.getClass().getSimpleName() + (message == null ? "" : ": " + message);
  }
}
