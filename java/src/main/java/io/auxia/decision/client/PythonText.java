package io.auxia.decision.client;

import com.google.gson.JsonPrimitive;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.math.MathContext;
import java.math.RoundingMode;

/**
 * Values written as the Python package writes them in its messages, so that the drift of every
 * language reads the same: Python's {@code repr} of a double and its {@code json.dumps} of a JSON
 * value as Python's {@code json} module reads it (a number with a fraction or an exponent a
 * double, any other an exact integer).
 */
final class PythonText {
  private PythonText() {}

  /** Whether Python's {@code json} reads a JSON number's text as a double: a fraction, an exponent. */
  static boolean isFloat(String number) {
    return number.indexOf('.') >= 0 || number.indexOf('e') >= 0 || number.indexOf('E') >= 0;
  }

  /** Python's {@code repr} of a double: {@code 0.5}, {@code 100.0}, {@code 1e-07}, {@code inf}. */
  static String repr(double value) {
    if (Double.isNaN(value)) {
      return "nan";
    }
    if (Double.isInfinite(value)) {
      return value > 0 ? "inf" : "-inf";
    }
    String sign = (value < 0 || (value == 0 && 1 / value < 0)) ? "-" : "";
    if (value == 0) {
      return sign + "0.0";
    }
    BigDecimal digits = shortest(Math.abs(value));
    String unscaled = digits.unscaledValue().toString();
    int exponent = unscaled.length() - 1 - digits.scale(); // of the first digit
    if (exponent >= -4 && exponent < 16) {
      String plain = digits.toPlainString();
      return sign + (plain.indexOf('.') >= 0 ? plain : plain + ".0");
    }
    String mantissa =
        unscaled.length() == 1 ? unscaled : unscaled.charAt(0) + "." + unscaled.substring(1);
    String power = String.format("%02d", Math.abs(exponent));
    return sign + mantissa + "e" + (exponent < 0 ? "-" : "+") + power;
  }

  /**
   * The fewest decimal digits that read back as the double, the nearest of them (as Python's
   * {@code repr}; JDK 17's {@code Double.toString} sometimes gives one more).
   */
  private static BigDecimal shortest(double value) {
    BigDecimal exact = new BigDecimal(value);
    for (int precision = 1; precision < 17; precision++) {
      BigDecimal rounded = exact.round(new MathContext(precision, RoundingMode.HALF_EVEN));
      if (rounded.doubleValue() == value) {
        return rounded.stripTrailingZeros();
      }
    }
    return exact.round(new MathContext(17, RoundingMode.HALF_EVEN)).stripTrailingZeros();
  }

  /** Python's {@code json.dumps} of a JSON string or number: every character past {@code ~} escaped. */
  static String asciiJson(JsonPrimitive value) {
    return written(value, true);
  }

  /** Python's {@code json.dumps(..., ensure_ascii=False)} of a JSON string or number. */
  static String json(JsonPrimitive value) {
    return written(value, false);
  }

  private static String written(JsonPrimitive value, boolean ascii) {
    if (value.isNumber()) {
      String text = value.getAsString();
      if (!isFloat(text)) {
        return new BigInteger(text).toString();
      }
      double number = Double.parseDouble(text);
      if (Double.isInfinite(number)) {
        return number > 0 ? "Infinity" : "-Infinity";
      }
      return repr(number);
    }
    if (value.isBoolean()) {
      return value.getAsBoolean() ? "true" : "false";
    }
    String text = value.getAsString();
    StringBuilder written = new StringBuilder("\"");
    for (int index = 0; index < text.length(); index++) {
      char character = text.charAt(index);
      switch (character) {
        case '"':
          written.append("\\\"");
          break;
        case '\\':
          written.append("\\\\");
          break;
        case '\n':
          written.append("\\n");
          break;
        case '\r':
          written.append("\\r");
          break;
        case '\t':
          written.append("\\t");
          break;
        case '\b':
          written.append("\\b");
          break;
        case '\f':
          written.append("\\f");
          break;
        default:
          if (character < 0x20 || (ascii && character > 0x7e)) {
            written.append(String.format("\\u%04x", (int) character));
          } else {
            written.append(character);
          }
      }
    }
    return written.append('"').toString();
  }
}
