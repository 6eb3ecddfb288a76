package io.auxia.decision.client;

import static io.auxia.decision.client.Drift.INVALID_VALUE;
import static io.auxia.decision.client.Drift.UNKNOWN_ENUM_VALUE;
import static io.auxia.decision.client.Drift.UNKNOWN_FIELD;
import static io.auxia.decision.client.Drift.WRONG_JSON_TYPE;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonPrimitive;
import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Descriptors.EnumDescriptor;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Descriptors.OneofDescriptor;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.time.LocalDate;
import java.time.YearMonth;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;

/**
 * The walk of {@link Drift#find}: a parsed JSON document against its message type, finding what
 * Python's {@code find_drift} finds, in its words.
 */
final class DriftFinder {
  /** Python's whitespace ({@code str.isspace}, its re's {@code \\s}): Java's {@code \\s} is ASCII. */
  private static final String PYTHON_SPACE =
      "[\\t\\n\\x0B\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
  private static final Pattern NOT_PLAIN = Pattern.compile(PYTHON_SPACE + "|[.\\[\\]\"]");
  private static final Pattern INTEGER = Pattern.compile("-?\\d+");
  // A JSON number's text and a timestamp's, as proto3 JSON reads them (Python's _json_text.py).
  private static final Pattern NUMBER_TEXT =
      Pattern.compile("-?[0-9]+(?:\\.[0-9]+)?(?:[eE][+-]?[0-9]+)?");
  private static final Pattern RFC3339_TEXT =
      Pattern.compile(
          "(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-[0-9]{2}-[0-9]{2}"
              + "T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?"
              + "(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])");
  private static final BigInteger INT32_MIN = BigInteger.valueOf(Integer.MIN_VALUE);
  private static final BigInteger INT32_MAX = BigInteger.valueOf(Integer.MAX_VALUE);
  private static final BigInteger UINT32_MAX =
      BigInteger.ONE.shiftLeft(32).subtract(BigInteger.ONE);
  private static final BigInteger INT64_MIN = BigInteger.valueOf(Long.MIN_VALUE);
  private static final BigInteger INT64_MAX = BigInteger.valueOf(Long.MAX_VALUE);
  private static final BigInteger UINT64_MAX =
      BigInteger.ONE.shiftLeft(64).subtract(BigInteger.ONE);
  /** What Python's {@code int()} reads besides a JSON integer's text: spaces, a +, underscores. */
  private static final Pattern PYTHON_INTEGER_TEXT =
      Pattern.compile(PYTHON_SPACE + "*[+-]?\\p{Nd}+(?:_\\p{Nd}+)*" + PYTHON_SPACE + "*");
  /** The first and the last second a Timestamp may hold: 0001-01-01 and 9999-12-31. */
  private static final long MIN_TIMESTAMP_SECONDS = -62135596800L;
  private static final long MAX_TIMESTAMP_SECONDS = 253402300799L;
  /** Past 2^53, a double holds no longer every integer. */
  private static final BigInteger EXACT = BigInteger.ONE.shiftLeft(53);
  /** A key as json_format reads an extension's: {@code [full.name]}. */
  private static final Pattern EXTENSION_NAME = Pattern.compile("\\[[a-zA-Z0-9._]*\\]\n?");
  /** A UTF-16 surrogate without its other half (a pair is one code point to a Java pattern). */
  private static final Pattern UNPAIRED_SURROGATE = Pattern.compile("[\\x{D800}-\\x{DFFF}]");
  /** Integer digits past which a number is beyond every integer type's range. */
  private static final int MAX_INTEGER_DIGITS = 21;
  private static final Map<Descriptor, Map<String, FieldDescriptor>> FIELDS =
      new ConcurrentHashMap<>();

  private DriftFinder() {}

  /** Returns the drifts of a parsed JSON document of a message type, in document order. */
  static List<Drift> find(JsonElement document, Descriptor type) {
    List<Drift> found = new ArrayList<>();
    walkMessage(document, type, "", found);
    return Collections.unmodifiableList(found);
  }

  private static void walkMessage(
      JsonElement value, Descriptor type, String path, List<Drift> found) {
    if (type.getFullName().equals("google.protobuf.Timestamp")) {
      walkTimestamp(value, path, found);
      return;
    }
    if (type.getFullName().startsWith("google.protobuf.")) {
      return; // a well-known type: its JSON form is its own
    }
    if (!value.isJsonObject()) {
      found.add(
          new Drift(
              path,
              WRONG_JSON_TYPE,
              "expected a JSON object (" + type.getName() + "), got " + kindOf(value)));
      return;
    }
    Map<String, FieldDescriptor> fields = FIELDS.computeIfAbsent(type, DriftFinder::fieldsOf);
    Map<Integer, String> setBy = new HashMap<>(); // the key each field was given by
    Map<String, String> setIn = new HashMap<>(); // the key each oneof was given by
    for (Map.Entry<String, JsonElement> member : value.getAsJsonObject().entrySet()) {
      String key = member.getKey();
      FieldDescriptor field = fields.get(key);
      if (field == null) {
        unknownMember(key, type, memberPath(path, key), found);
        continue;
      }
      String fieldPath = memberPath(path, field.getJsonName());
      String other = setBy.putIfAbsent(field.getNumber(), key);
      if (other != null) {
        found.add(
            new Drift(
                fieldPath, INVALID_VALUE, "set twice, as \"" + other + "\" and as \"" + key + "\""));
        continue;
      }
      if (member.getValue().isJsonNull()) {
        continue; // unset
      }
      OneofDescriptor oneof = field.getRealContainingOneof();
      if (oneof != null) {
        String first = setIn.putIfAbsent(oneof.getName(), key);
        if (first != null) {
          found.add(
              new Drift(
                  fieldPath,
                  INVALID_VALUE,
                  "\"" + first + "\" and \"" + key + "\" are both set, but at most one field of oneof \""
                      + oneof.getName() + "\" may be"));
        }
      }
      walkField(member.getValue(), field, fieldPath, found);
    }
  }

  private static void unknownMember(String key, Descriptor type, String path, List<Drift> found) {
    if (EXTENSION_NAME.matcher(key).matches() && type.toProto().getExtensionRangeCount() == 0) {
      found.add(
          new Drift(
              path,
              INVALID_VALUE,
              "\"" + key + "\" names an extension, and " + type.getName() + " has none"));
    } else if (UNPAIRED_SURROGATE.matcher(key).find()) {
      found.add(new Drift(path, INVALID_VALUE, "the key has an unpaired surrogate"));
    } else {
      found.add(
          new Drift(path, UNKNOWN_FIELD, "\"" + key + "\" is not a field of " + type.getName()));
    }
  }

  private static Map<String, FieldDescriptor> fieldsOf(Descriptor type) {
    Map<String, FieldDescriptor> fields = new HashMap<>();
    for (FieldDescriptor field : type.getFields()) {
      fields.put(field.getName(), field);
      fields.put(field.getJsonName(), field);
    }
    return fields;
  }

  private static void walkField(
      JsonElement value, FieldDescriptor field, String path, List<Drift> found) {
    if (field.isMapField()) {
      if (!value.isJsonObject()) {
        wrongType(value, "a JSON object (a map)", path, found);
        return;
      }
      FieldDescriptor keyField = field.getMessageType().findFieldByName("key");
      FieldDescriptor item = field.getMessageType().findFieldByName("value");
      for (Map.Entry<String, JsonElement> entry : value.getAsJsonObject().entrySet()) {
        String itemPath = path + "[\"" + entry.getKey() + "\"]";
        if (keyField.getJavaType() == FieldDescriptor.JavaType.STRING
            && UNPAIRED_SURROGATE.matcher(entry.getKey()).find()) {
          found.add(new Drift(itemPath, INVALID_VALUE, "the map key has an unpaired surrogate"));
        }
        if (entry.getValue().isJsonNull() && !holdsNull(item)) {
          found.add(new Drift(itemPath, INVALID_VALUE, "null is not allowed as a map value"));
        } else {
          walkValue(entry.getValue(), item, itemPath, found);
        }
      }
    } else if (field.isRepeated()) {
      if (!value.isJsonArray()) {
        wrongType(value, "an array", path, found);
        return;
      }
      JsonArray items = value.getAsJsonArray();
      for (int index = 0; index < items.size(); index++) {
        String itemPath = path + "[" + index + "]";
        if (items.get(index).isJsonNull() && !holdsNull(field)) {
          found.add(new Drift(itemPath, INVALID_VALUE, "null is not allowed in an array"));
        } else {
          walkValue(items.get(index), field, itemPath, found);
        }
      }
    } else {
      walkValue(value, field, path, found);
    }
  }

  private static void walkValue(
      JsonElement value, FieldDescriptor field, String path, List<Drift> found) {
    switch (field.getJavaType()) {
      case MESSAGE:
        walkMessage(value, field.getMessageType(), path, found);
        return;
      case ENUM:
        walkEnum(value, field.getEnumType(), path, found);
        return;
      case STRING:
        if (!isString(value)) {
          wrongType(value, "a string", path, found);
        } else if (UNPAIRED_SURROGATE.matcher(value.getAsString()).find()) {
          found.add(new Drift(path, INVALID_VALUE, "the string has an unpaired surrogate"));
        }
        return;
      case BYTE_STRING:
        if (!isString(value)) {
          wrongType(value, "a base64 string", path, found);
        }
        return;
      case BOOLEAN:
        if (!(value.isJsonPrimitive() && value.getAsJsonPrimitive().isBoolean())) {
          wrongType(value, "true or false", path, found);
        }
        return;
      default: // the numbers, written as JSON numbers or as strings
        boolean floating =
            field.getJavaType() == FieldDescriptor.JavaType.DOUBLE
                || field.getJavaType() == FieldDescriptor.JavaType.FLOAT;
        if (!(value.isJsonPrimitive()
            && (value.getAsJsonPrimitive().isNumber() || value.getAsJsonPrimitive().isString()))) {
          wrongType(value, floating ? "a number" : "an integer (a number or a string)", path, found);
        } else if (floating) {
          walkFloating(value.getAsJsonPrimitive(), field, path, found);
        } else {
          walkInteger(value.getAsJsonPrimitive(), field.getType(), path, found);
        }
    }
  }

  private static void walkFloating(
      JsonPrimitive value, FieldDescriptor field, String path, List<Drift> found) {
    String text = value.getAsString();
    if (value.isString()
        && (text.equals("NaN") || text.equals("Infinity") || text.equals("-Infinity"))) {
      return;
    }
    if (value.isString() && !NUMBER_TEXT.matcher(text).matches()) {
      found.add(
          new Drift(
              path,
              INVALID_VALUE,
              "expected a number or \"NaN\", \"Infinity\", got \"" + text + "\""));
      return;
    }
    double number = Double.parseDouble(text);
    if (Double.isInfinite(number)) {
      String shown = value.isString() ? text : "the number"; // not 400 digits
      found.add(
          new Drift(
              path,
              INVALID_VALUE,
              shown + " is out of the double range: use \"Infinity\" or \"-Infinity\""));
    } else if (field.getJavaType() == FieldDescriptor.JavaType.FLOAT
        && Math.abs(number) > Float.MAX_VALUE) {
      String shown = value.isString() ? text : PythonText.asciiJson(value);
      found.add(new Drift(path, INVALID_VALUE, shown + " is out of the float range"));
    }
  }

  private static void walkInteger(
      JsonPrimitive value, FieldDescriptor.Type type, String path, List<Drift> found) {
    String text = value.getAsString();
    if (!value.isNumber() && !NUMBER_TEXT.matcher(text).matches()) {
      found.add(notAnInteger(path, value));
      return;
    }
    BigInteger[] range = rangeOf(type);
    BigInteger integer;
    if (value.isNumber() && PythonText.isFloat(text)) {
      // Python's json reads it as a double: the double's integer, if it is one.
      double number = Double.parseDouble(text);
      if (Double.isInfinite(number) || number != Math.rint(number)) {
        found.add(notAnInteger(path, value));
        return;
      }
      integer = new BigDecimal(number).toBigIntegerExact();
    } else {
      BigDecimal number = decimalOf(value);
      if (number == null && text.matches(".*[eE]-.*")) {
        found.add(notAnInteger(path, value)); // 1e-9999999999: a fraction
        return;
      }
      if (number == null || number.precision() - number.scale() > MAX_INTEGER_DIGITS) {
        // Past every range: as Python, shown as given, its digits never made.
        found.add(new Drift(path, INVALID_VALUE, outOfRange(text, type, range)));
        return;
      }
      if (number.scale() > 0) {
        found.add(notAnInteger(path, value));
        return;
      }
      // At most MAX_INTEGER_DIGITS digits and no fraction: made exactly, at once.
      integer = number.toBigIntegerExact();
    }
    if (integer.compareTo(range[0]) < 0 || integer.compareTo(range[1]) > 0) {
      found.add(new Drift(path, INVALID_VALUE, outOfRange(integer.toString(), type, range)));
    } else if (value.isString()
        && !INTEGER.matcher(text).matches()
        && integer.abs().compareTo(EXACT) > 0) {
      found.add(
          new Drift(
              path,
              INVALID_VALUE,
              "\"" + text + "\" has a fraction or an exponent and is beyond 2^53,"
                  + " where it cannot be read exactly: write the integer's decimal digits alone"));
    }
  }

  private static Drift notAnInteger(String path, JsonPrimitive value) {
    return new Drift(path, INVALID_VALUE, "expected an integer, got " + PythonText.asciiJson(value));
  }

  /**
   * Returns the number a JSON number, or a number's text, holds, without trailing zeros: its scale
   * says whether it has a fraction, and its precision less its scale how many integer digits it
   * has, neither computing the number's digits (1e-99999999 or 1e999999999 stay small). Null when
   * its exponent is past what a {@code BigDecimal} holds.
   */
  private static BigDecimal decimalOf(JsonPrimitive value) {
    try {
      BigDecimal number =
          value.isNumber() ? value.getAsBigDecimal() : new BigDecimal(value.getAsString());
      return number.stripTrailingZeros();
    } catch (NumberFormatException | ArithmeticException beyond) {
      return null;
    }
  }

  private static BigInteger[] rangeOf(FieldDescriptor.Type type) {
    switch (type) {
      case INT32:
      case SINT32:
      case SFIXED32:
        return new BigInteger[] {INT32_MIN, INT32_MAX};
      case UINT32:
      case FIXED32:
        return new BigInteger[] {BigInteger.ZERO, UINT32_MAX};
      case UINT64:
      case FIXED64:
        return new BigInteger[] {BigInteger.ZERO, UINT64_MAX};
      default:
        return new BigInteger[] {INT64_MIN, INT64_MAX};
    }
  }

  private static String outOfRange(String shown, FieldDescriptor.Type type, BigInteger[] range) {
    return shown + " is out of the " + type.name().toLowerCase(Locale.ROOT) + " range ["
        + range[0] + ", " + range[1] + "]";
  }

  private static void walkTimestamp(JsonElement value, String path, List<Drift> found) {
    if (!isString(value)) {
      wrongType(
          value,
          "an RFC 3339 timestamp string such as \"2025-01-01T00:00:00Z\"",
          path,
          found);
    } else if (!RFC3339_TEXT.matcher(value.getAsString()).matches()) {
      found.add(
          new Drift(
              path,
              INVALID_VALUE,
              "\"" + value.getAsString()
                  + "\" is not an RFC 3339 timestamp such as \"2024-05-30T11:32:44.279Z\""));
    } else {
      String problem = impossibleTime(value.getAsString());
      if (problem != null) {
        found.add(
            new Drift(
                path,
                INVALID_VALUE,
                "\"" + value.getAsString() + "\" is not an RFC 3339 timestamp string such as"
                    + " \"2025-01-01T00:00:00Z\": " + problem));
      }
    }
  }

  /**
   * Returns what is wrong with a timestamp of RFC 3339's form, in the words of Python's reader
   * (protobuf's {@code FromJsonString}): a month or day no date has, a day its month lacks, or an
   * instant outside the years 1 to 9999; null if nothing is.
   */
  private static String impossibleTime(String text) {
    int year = Integer.parseInt(text.substring(0, 4));
    int month = Integer.parseInt(text.substring(5, 7));
    int day = Integer.parseInt(text.substring(8, 10));
    if (month < 1 || month > 12 || day < 1 || day > 31) {
      return "time data '" + text.substring(0, 19)
          + "' does not match format '%Y-%m-%dT%H:%M:%S'";
    }
    if (day > YearMonth.of(year, month).lengthOfMonth()) {
      return "day is out of range for month";
    }
    int offset = 0;
    if (!text.endsWith("Z")) {
      String zone = text.substring(text.length() - 6);
      int minutes =
          Integer.parseInt(zone.substring(1, 3)) * 60 + Integer.parseInt(zone.substring(4, 6));
      offset = (zone.charAt(0) == '-' ? -1 : 1) * minutes * 60;
    }
    long seconds =
        LocalDate.of(year, month, day).toEpochDay() * 86400
            + Integer.parseInt(text.substring(11, 13)) * 3600L
            + Integer.parseInt(text.substring(14, 16)) * 60L
            + Integer.parseInt(text.substring(17, 19))
            - offset;
    if (seconds < MIN_TIMESTAMP_SECONDS || seconds > MAX_TIMESTAMP_SECONDS) {
      return "Timestamp is not valid: Seconds " + seconds + " must be in range ["
          + MIN_TIMESTAMP_SECONDS + ", " + MAX_TIMESTAMP_SECONDS + "].";
    }
    return null;
  }

  private static void walkEnum(
      JsonElement value, EnumDescriptor type, String path, List<Drift> found) {
    if (type.getFullName().equals("google.protobuf.NullValue")) {
      return;
    }
    BigInteger number;
    if (isString(value)) {
      String text = value.getAsString();
      if (UNPAIRED_SURROGATE.matcher(text).find()) {
        found.add(new Drift(path, INVALID_VALUE, "the string has an unpaired surrogate"));
        return;
      }
      if (type.findValueByName(text) != null) {
        return;
      }
      if (!INTEGER.matcher(text).matches()) {
        if (PYTHON_INTEGER_TEXT.matcher(text).matches()) {
          found.add(
              new Drift(
                  path,
                  INVALID_VALUE,
                  "expected an enum value name or an integer, got \"" + text + "\""));
        } else {
          found.add(unknownEnumValue(path, value.getAsJsonPrimitive(), type));
        }
        return;
      }
      number = new BigInteger(text);
    } else if (value.isJsonPrimitive() && value.getAsJsonPrimitive().isNumber()) {
      String text = value.getAsString();
      if (PythonText.isFloat(text)) { // a double to Python's json: 1.0 is 1, 0.5 no integer
        double floating = Double.parseDouble(text);
        if (Double.isInfinite(floating) || floating != Math.rint(floating)) {
          found.add(
              new Drift(
                  path,
                  INVALID_VALUE,
                  "expected an enum value name or an integer, got " + PythonText.repr(floating)));
          return;
        }
        number = new BigDecimal(floating).toBigInteger();
      } else {
        number = new BigInteger(text);
      }
    } else {
      found.add(
          new Drift(
              path,
              WRONG_JSON_TYPE,
              "expected an enum value name or number, got " + kindOf(value)));
      return;
    }
    if (number.compareTo(INT32_MIN) < 0 || number.compareTo(INT32_MAX) > 0) {
      found.add(
          new Drift(path, INVALID_VALUE, "enum number " + number + " is out of the int32 range"));
    } else if (type.findValueByNumber(number.intValue()) == null) {
      found.add(unknownEnumValue(path, value.getAsJsonPrimitive(), type));
    }
  }

  private static Drift unknownEnumValue(String path, JsonPrimitive value, EnumDescriptor type) {
    return new Drift(
        path,
        UNKNOWN_ENUM_VALUE,
        path + "=" + PythonText.json(value) + " is not a value of " + type.getName());
  }

  /** Whether a list's items or a map's values may be null: google.protobuf.Value, NullValue. */
  private static boolean holdsNull(FieldDescriptor field) {
    if (field.getJavaType() == FieldDescriptor.JavaType.MESSAGE) {
      return field.getMessageType().getFullName().equals("google.protobuf.Value");
    }
    return field.getJavaType() == FieldDescriptor.JavaType.ENUM
        && field.getEnumType().getFullName().equals("google.protobuf.NullValue");
  }

  private static boolean isString(JsonElement value) {
    return value.isJsonPrimitive() && value.getAsJsonPrimitive().isString();
  }

  private static void wrongType(
      JsonElement value, String expected, String path, List<Drift> found) {
    found.add(new Drift(path, WRONG_JSON_TYPE, "expected " + expected + ", got " + kindOf(value)));
  }

  /** What the Python client's JSON paths do: {@code a.b}, or {@code a["b c"]} for another name. */
  static String memberPath(String parent, String name) {
    if (name.isEmpty() || NOT_PLAIN.matcher(name).find()) {
      return parent + "[" + PythonText.json(new JsonPrimitive(name)) + "]";
    }
    return parent.isEmpty() ? name : parent + "." + name;
  }

  private static String kindOf(JsonElement value) {
    if (value.isJsonNull()) {
      return "null";
    }
    if (value.isJsonArray()) {
      return "an array";
    }
    if (value.isJsonObject()) {
      return "an object";
    }
    JsonPrimitive primitive = value.getAsJsonPrimitive();
    return primitive.isBoolean() ? "a boolean" : primitive.isNumber() ? "a number" : "a string";
  }
}
