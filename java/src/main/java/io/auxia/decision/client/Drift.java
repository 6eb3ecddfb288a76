package io.auxia.decision.client;

import com.google.gson.JsonElement;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import com.google.protobuf.Descriptors.Descriptor;
import java.util.List;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * One place where an answer says what the schema does not know: a member its message type lacks,
 * an enum value its enum lacks (a name, or a number it does not name), a value of a JSON type its
 * field cannot take, or a value of the right JSON type its field still cannot take. A newer API
 * may answer so; read leniently, such values vanish.
 */
public final class Drift {
  /** A member that names no field of its message type. */
  public static final String UNKNOWN_FIELD = "unknown_field";

  /** An enum value name its type lacks, or a number it does not name. */
  public static final String UNKNOWN_ENUM_VALUE = "unknown_enum_value";

  /** A value of a JSON type its field cannot take (a number for a string field). */
  public static final String WRONG_JSON_TYPE = "wrong_json_type";

  /**
   * What else a value cannot be: an integer out of range or with a fraction, a field given under
   * both its names, two members of a oneof, a null in an array, an impossible date, ... (as
   * Python's {@code find_drift} says it).
   */
  public static final String INVALID_VALUE = "invalid_value";

  private static final Pattern INDEX_OR_KEY = Pattern.compile("\\[(?:\\d+|\"(?:[^\"\\\\]|\\\\.)*\")\\]");

  private final String path;
  private final String kind;
  private final String detail;

  /**
   * Makes a drift.
   *
   * @param path the JSON path of the value ({@code userTreatments[0].newField})
   * @param kind {@link #UNKNOWN_FIELD}, {@link #UNKNOWN_ENUM_VALUE}, {@link #WRONG_JSON_TYPE} or
   *     {@link #INVALID_VALUE}
   * @param detail what is there, in words
   */
  public Drift(String path, String kind, String detail) {
    this.path = Objects.requireNonNull(path);
    this.kind = Objects.requireNonNull(kind);
    this.detail = Objects.requireNonNull(detail);
  }

  /** {@return the JSON path of the value: {@code userTreatments[0].newField}} */
  public String path() {
    return path;
  }

  /**
   * {@return {@link #UNKNOWN_FIELD}, {@link #UNKNOWN_ENUM_VALUE}, {@link #WRONG_JSON_TYPE} or
   * {@link #INVALID_VALUE}}
   */
  public String kind() {
    return kind;
  }

  /** {@return what is there, in words: {@code treatment.status="NEW" is not a value of Status}} */
  public String detail() {
    return detail;
  }

  /** {@return the path with {@code [*]} for every array index and map key: where drift counts} */
  public String place() {
    return INDEX_OR_KEY.matcher(path).replaceAll("[*]");
  }

  @Override
  public boolean equals(Object other) {
    return other instanceof Drift
        && path.equals(((Drift) other).path)
        && kind.equals(((Drift) other).kind)
        && detail.equals(((Drift) other).detail);
  }

  @Override
  public int hashCode() {
    return Objects.hash(path, kind, detail);
  }

  @Override
  public String toString() {
    return (path.isEmpty() ? "(the document)" : path) + ": " + kind + ": " + detail;
  }

  /**
   * Returns every place a JSON text of a message type says what the schema does not know: members
   * its type lacks (at any depth, in lists and maps too), enum values it lacks, values of JSON
   * types their fields cannot take, and values of the right JSON type their fields still cannot
   * take.
   * Well-known types other than Timestamp (Duration, Struct, ...) are read as they are, not walked.
   *
   * @param json the JSON text
   * @param type the descriptor of the message type it is a JSON form of
   * @return the drifts in document order; empty when the schema knows everything in it, or when
   *     the text is not JSON at all
   */
  public static List<Drift> find(String json, Descriptor type) {
    JsonElement document;
    try {
      // Lenient, as JsonFormat reads answers (Gson's strict reader refuses long numbers too).
      document = JsonParser.parseString(json);
    } catch (JsonParseException | IllegalStateException error) {
      return List.of();
    }
    return DriftFinder.find(document, type);
  }

  static String describe(String method, Drift drift) {
    return method + " answered what the schema does not know (" + drift.kind + " at "
        + (drift.path.isEmpty() ? "the root" : drift.path) + "): " + drift.detail
        + "; this package may be older than the API";
  }
}
