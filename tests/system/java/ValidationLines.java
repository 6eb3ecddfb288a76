import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.protobuf.Message;
import com.google.rpc.BadRequest;
import io.auxia.decision.client.Validation;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.List;

/**
 * {@code Validation.validate} driven by the Python tests, one request a line: their verdicts must
 * be Python's.
 *
 * <p>Each line of stdin is {@code {"type": "<full message name>", "binary": "<base64>"}}: a
 * message of the API's protos, as Python serialized it. Each is answered by one line, in order:
 * {@code {"errors": [[path, words], ...], "warnings": [...]}}, or {@code {"error": "..."}} when
 * the line cannot be read.
 */
public final class ValidationLines {
  private ValidationLines() {}

  public static void main(String[] args) throws Exception {
    BufferedReader lines =
        new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
    for (String line = lines.readLine(); line != null; line = lines.readLine()) {
      if (line.isBlank()) {
        continue;
      }
      JsonObject answer;
      try {
        answer = answer(JsonParser.parseString(line).getAsJsonObject());
      } catch (Exception error) {
        answer = new JsonObject();
        answer.addProperty("error", error.toString());
      }
      out.println(answer);
    }
  }

  private static JsonObject answer(JsonObject question) throws Exception {
    // java_multiple_files: each top-level message of io.auxia.decision.model is a class of that name.
    Class<?> type = Class.forName(question.get("type").getAsString());
    Message prototype = (Message) type.getMethod("getDefaultInstance").invoke(null);
    byte[] binary = Base64.getDecoder().decode(question.get("binary").getAsString());
    Validation.Result result = Validation.validate(prototype.getParserForType().parseFrom(binary));
    JsonObject answer = new JsonObject();
    answer.add("errors", pairs(result.errors()));
    answer.add("warnings", pairs(result.warnings()));
    return answer;
  }

  private static JsonArray pairs(List<BadRequest.FieldViolation> violations) {
    JsonArray found = new JsonArray();
    for (BadRequest.FieldViolation violation : violations) {
      JsonArray pair = new JsonArray();
      pair.add(violation.getField());
      pair.add(violation.getDescription());
      found.add(pair);
    }
    return found;
  }
}
