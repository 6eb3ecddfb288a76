package io.auxia.decision.client;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.TypeRegistry;
import com.google.protobuf.util.JsonFormat;
import com.google.rpc.BadRequest;
import com.google.rpc.Code;
import com.google.rpc.DebugInfo;
import com.google.rpc.ErrorInfo;
import com.google.rpc.Help;
import com.google.rpc.LocalizedMessage;
import com.google.rpc.PreconditionFailure;
import com.google.rpc.QuotaFailure;
import com.google.rpc.RequestInfo;
import com.google.rpc.ResourceInfo;
import com.google.rpc.RetryInfo;
import com.google.rpc.Status;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * An error of the Auxia API or of the emulator admin API: a {@code google.rpc.Status} (code,
 * message, typed details) and the HTTP status that carried it.
 *
 * <p>The details are unpacked into their {@code google.rpc} messages ({@link BadRequest}, whose
 * field violations name each bad field by its JSON path, {@link RetryInfo}, ...). {@link
 * #getMessage()} lists every field violation.
 */
public final class ApiError extends RuntimeException {
  private static final long serialVersionUID = 1L;
  private static final int MAX_BODY_EXCERPT = 200;

  /** The {@code google.rpc} detail types that {@link #details()} unpacks. */
  private static final List<Message> DETAIL_TYPES =
      List.of(
          BadRequest.getDefaultInstance(),
          ErrorInfo.getDefaultInstance(),
          RetryInfo.getDefaultInstance(),
          DebugInfo.getDefaultInstance(),
          QuotaFailure.getDefaultInstance(),
          PreconditionFailure.getDefaultInstance(),
          RequestInfo.getDefaultInstance(),
          ResourceInfo.getDefaultInstance(),
          Help.getDefaultInstance(),
          LocalizedMessage.getDefaultInstance());

  private static final JsonFormat.Parser STATUS_PARSER = statusParser();

  /** The status code an HTTP status without a {@code google.rpc.Status} body stands for. */
  private static final Map<Integer, Code> CODE_BY_HTTP_STATUS =
      Map.ofEntries(
          Map.entry(400, Code.INVALID_ARGUMENT),
          Map.entry(401, Code.UNAUTHENTICATED),
          Map.entry(403, Code.PERMISSION_DENIED),
          Map.entry(404, Code.NOT_FOUND),
          Map.entry(405, Code.UNIMPLEMENTED),
          Map.entry(409, Code.ABORTED),
          Map.entry(412, Code.FAILED_PRECONDITION),
          Map.entry(413, Code.INVALID_ARGUMENT),
          Map.entry(415, Code.INVALID_ARGUMENT),
          Map.entry(429, Code.RESOURCE_EXHAUSTED),
          Map.entry(499, Code.CANCELLED),
          Map.entry(501, Code.UNIMPLEMENTED),
          Map.entry(502, Code.UNAVAILABLE),
          Map.entry(503, Code.UNAVAILABLE),
          Map.entry(504, Code.DEADLINE_EXCEEDED));

  private final transient Status status;
  private final transient List<Message> details;
  private final int httpStatus;

  private ApiError(Status status, List<Message> details, int httpStatus, Throwable cause) {
    super(describe(status, details, httpStatus), cause);
    this.status = status;
    this.details = details;
    this.httpStatus = httpStatus;
  }

  private ApiError(Status status, int httpStatus, Throwable cause) {
    this(status, unpack(status), httpStatus, cause);
  }

  /**
   * Returns the error an HTTP error answer describes.
   *
   * <p>A {@code google.rpc.Status} JSON body is read, details included; any other body (a proxy's
   * HTML page, a truncated answer) still gives an error whose code follows the HTTP status and
   * whose message quotes the start of the body.
   *
   * @param httpStatus the answer's HTTP status
   * @param contentType the answer's {@code Content-Type}, or an empty string
   * @param body the answer's body
   * @return the error
   */
  public static ApiError fromHttpResponse(int httpStatus, String contentType, byte[] body) {
    Status status = statusFromJson(body);
    if (status != null && status.getCode() != Code.OK_VALUE) {
      return new ApiError(status, httpStatus, null);
    }
    String text = new String(body, StandardCharsets.UTF_8).strip().replaceAll("\\s+", " ");
    String excerpt = text.length() > MAX_BODY_EXCERPT ? text.substring(0, MAX_BODY_EXCERPT) : text;
    String kind = contentType.split(";", 2)[0].strip();
    String message =
        "HTTP " + httpStatus + " with a non-Status body ("
            + (kind.isEmpty() ? "no content type" : kind) + ")";
    if (!excerpt.isEmpty()) {
      message += ": " + excerpt;
    }
    Status made =
        Status.newBuilder()
            .setCode(codeForHttpStatus(httpStatus).getNumber())
            .setMessage(message)
            .build();
    return new ApiError(made, httpStatus, null);
  }

  /**
   * Returns an error for a call that got no HTTP answer at all.
   *
   * @param code the status code ({@code UNAVAILABLE} when no connection could be made, {@code
   *     DEADLINE_EXCEEDED} on a timeout)
   * @param message what went wrong
   * @param cause the exception that stopped the call
   * @return the error, without an HTTP status
   */
  public static ApiError withoutAnswer(Code code, String message, Throwable cause) {
    return new ApiError(
        Status.newBuilder().setCode(code.getNumber()).setMessage(message).build(), 0, cause);
  }

  /**
   * Returns an error of a status this library made about an answer (its details unpacked).
   *
   * @param status the status
   * @param httpStatus the answer's HTTP status
   * @return the error
   */
  static ApiError withStatus(Status status, int httpStatus) {
    return new ApiError(status, httpStatus, null);
  }

  /**
   * Returns an error for an answer whose status said success but whose body cannot be read.
   *
   * @param httpStatus the answer's HTTP status
   * @param message what is wrong with the body
   * @return an {@code UNKNOWN} error carrying the HTTP status
   */
  static ApiError unreadableAnswer(int httpStatus, String message) {
    return new ApiError(
        Status.newBuilder().setCode(Code.UNKNOWN_VALUE).setMessage(message).build(),
        httpStatus,
        null);
  }

  /**
   * {@return the status code ({@code UNKNOWN} for a number outside google.rpc.Code, as the Python
   * and TypeScript clients read it; {@link #status()} keeps the number)}
   */
  public Code code() {
    Code code = Code.forNumber(status.getCode());
    return code == null ? Code.UNKNOWN : code;
  }

  /** {@return the HTTP status of the answer that carried the error; empty when none came} */
  public OptionalInt httpStatus() {
    return httpStatus == 0 ? OptionalInt.empty() : OptionalInt.of(httpStatus);
  }

  /** {@return the error as the server sent it: a {@code google.rpc.Status}, details packed} */
  public Status status() {
    return status;
  }

  /** {@return the status message, without the code or field violations} */
  public String statusMessage() {
    return status.getMessage();
  }

  /** {@return the details, each unpacked into its {@code google.rpc} type when known} */
  public List<Message> details() {
    return details;
  }

  /**
   * Returns the first detail of a type.
   *
   * @param type the detail's class, such as {@code BadRequest.class}
   * @param <T> the detail's type
   * @return the detail, or empty when the error has none of that type
   */
  public <T extends Message> Optional<T> detail(Class<T> type) {
    return details.stream().filter(type::isInstance).map(type::cast).findFirst();
  }

  /** {@return the field violations of every {@code BadRequest} detail} */
  public List<BadRequest.FieldViolation> fieldViolations() {
    List<BadRequest.FieldViolation> violations = new ArrayList<>();
    for (Message detail : details) {
      if (detail instanceof BadRequest) {
        violations.addAll(((BadRequest) detail).getFieldViolationsList());
      }
    }
    return violations;
  }

  /** {@return how long the error asks to wait before trying again, when a RetryInfo says} */
  public Optional<Duration> retryDelay() {
    return detail(RetryInfo.class)
        .filter(RetryInfo::hasRetryDelay)
        .map(RetryInfo::getRetryDelay)
        .map(delay -> Duration.ofSeconds(delay.getSeconds(), delay.getNanos()));
  }

  /**
   * Returns the status code an HTTP status without a {@code google.rpc.Status} body stands for.
   *
   * @param httpStatus an HTTP status
   * @return its code: the table of google.rpc.Code's documentation
   */
  public static Code codeForHttpStatus(int httpStatus) {
    Code code = CODE_BY_HTTP_STATUS.get(httpStatus);
    if (code != null) {
      return code;
    }
    if (httpStatus >= 200 && httpStatus < 300) {
      return Code.OK;
    }
    return httpStatus >= 400 && httpStatus < 500 ? Code.FAILED_PRECONDITION : Code.UNKNOWN;
  }

  private static JsonFormat.Parser statusParser() {
    TypeRegistry.Builder registry = TypeRegistry.newBuilder();
    for (Message type : DETAIL_TYPES) {
      registry.add(type.getDescriptorForType());
    }
    return JsonFormat.parser().usingTypeRegistry(registry.build()).ignoringUnknownFields();
  }

  private static Status statusFromJson(byte[] body) {
    String text = new String(body, StandardCharsets.UTF_8);
    JsonObject document;
    try {
      JsonElement element = JsonParser.parseString(text);
      if (!element.isJsonObject()) {
        return null;
      }
      document = element.getAsJsonObject();
      JsonElement code = document.get("code");
      if (code == null || !code.isJsonPrimitive() || !code.getAsJsonPrimitive().isNumber()) {
        return null;
      }
    } catch (JsonParseException | IllegalStateException | StackOverflowError error) {
      return null;
    }
    Status.Builder status = Status.newBuilder();
    try {
      STATUS_PARSER.merge(text, status);
      return status.build();
    } catch (InvalidProtocolBufferException | RuntimeException error) {
      // Keep what can be read when a detail has a type this client does not know.
      JsonElement message = document.get("message");
      return Status.newBuilder()
          .setCode(document.get("code").getAsInt())
          .setMessage(message != null && message.isJsonPrimitive() ? message.getAsString() : "")
          .build();
    }
  }

  private static List<Message> unpack(Status status) {
    List<Message> unpacked = new ArrayList<>();
    for (Any packed : status.getDetailsList()) {
      unpacked.add(unpackOne(packed));
    }
    return Collections.unmodifiableList(unpacked);
  }

  private static Message unpackOne(Any packed) {
    for (Message type : DETAIL_TYPES) {
      if (packed.is(type.getClass())) {
        try {
          return packed.unpack(type.getClass());
        } catch (InvalidProtocolBufferException error) {
          return packed;
        }
      }
    }
    return packed;
  }

  private static String describe(Status status, List<Message> details, int httpStatus) {
    Code code = Code.forNumber(status.getCode());
    String name = code == null ? "CODE_" + status.getCode() : code.name();
    String where = httpStatus == 0 ? " (no HTTP answer)" : " (HTTP " + httpStatus + ")";
    StringBuilder text =
        new StringBuilder(name).append(where).append(": ").append(status.getMessage());
    List<String> lines = new ArrayList<>();
    for (Message detail : details) {
      if (detail instanceof BadRequest) {
        for (BadRequest.FieldViolation violation : ((BadRequest) detail).getFieldViolationsList()) {
          lines.add(
              violation.getField().isEmpty()
                  ? violation.getDescription()
                  : violation.getField() + ": " + violation.getDescription());
        }
      }
    }
    if (lines.size() == 1 && lines.get(0).equals(status.getMessage())) {
      return text.toString(); // the message is the one violation: say it once
    }
    for (String line : lines) {
      text.append("\n  ").append(line);
    }
    return text.toString();
  }
}
