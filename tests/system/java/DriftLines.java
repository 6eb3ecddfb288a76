import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.protobuf.Descriptors.Descriptor;
import io.auxia.decision.client.Drift;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/**
 * {@code Drift.find} driven by the Python tests, one document a line: its drifts must be
 * Python's.
 *
 * <p>Each line of stdin is {@code {"type": "<full message name>", "text": "<a JSON document>"}};
 * each is answered by one line, in order: {@code [{"path", "kind", "detail"}, ...]}, or {@code
 * {"error": "..."}} when the line cannot be read.
 */
public final class DriftLines {
  private DriftLines() {}

  public static void main(String[] args) throws Exception {
    BufferedReader lines =
        new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
    for (String line = lines.readLine(); line != null; line = lines.readLine()) {
      if (line.isBlank()) {
        continue;
      }
      String answer;
      try {
        answer = answer(JsonParser.parseString(line).getAsJsonObject()).toString();
      } catch (Exception error) {
        JsonObject failed = new JsonObject();
        failed.addProperty("error", error.toString());
        answer = failed.toString();
      }
      out.println(ascii(answer));
    }
  }

  /** JSON text with every character past ASCII escaped: a lone surrogate has no UTF-8. */
  private static String ascii(String json) {
    StringBuilder written = new StringBuilder();
    for (int index = 0; index < json.length(); index++) {
      char character = json.charAt(index);
      if (character > 0x7f) {
        written.append(String.format("\\u%04x", (int) character));
      } else {
        written.append(character);
      }
    }
    return written.toString();
  }

  private static JsonArray answer(JsonObject question) throws Exception {
    // java_multiple_files: each top-level message of io.auxia.decision.model is a class.
    Class<?> generated = Class.forName(question.get("type").getAsString());
    Descriptor type = (Descriptor) generated.getMethod("getDescriptor").invoke(null);
    JsonArray found = new JsonArray();
    for (Drift drift : Drift.find(question.get("text").getAsString(), type)) {
      JsonObject one = new JsonObject();
      one.addProperty("path", drift.path());
      one.addProperty("kind", drift.kind());
      one.addProperty("detail", drift.detail());
      found.add(one);
    }
    return found;
  }
}
