import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.api.FieldBehaviorProto;
import com.google.protobuf.DescriptorProtos.FileDescriptorProto;
import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Descriptors.FileDescriptor;
import com.google.protobuf.DynamicMessage;
import com.google.protobuf.ExtensionRegistry;
import com.google.protobuf.Message;
import com.google.rpc.BadRequest;
import io.auxia.decision.client.Drift;
import io.auxia.decision.client.Validation;
import io.auxia.decision.model.FieldRulesProto;
import io.auxia.decision.model.OneofBehaviorProto;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.List;

/**
 * {@code Validation.validate} and {@code Drift.find} driven by the Python tests, one question a
 * line: their answers must be Python's ({@code tests/_rule_draws.py}, {@code
 * tests/_drift_draws.py}).
 *
 * <p>Each line of stdin is a JSON object, answered by one line, in order (or by {@code {"error":
 * "..."}} when the line cannot be read), every character past ASCII escaped:
 *
 * <ul>
 *   <li>{@code {"type": "<full message name>", "binary": "<base64>"}}: a message of the API's
 *       protos, as Python serialized it; with {@code "file"} (a base64 FileDescriptorProto
 *       importing the jar's files), a message of that file. Answered by the verdict of {@code
 *       validate}: {@code {"errors": [[path, words], ...], "warnings": [...]}}.
 *   <li>{@code {"type": "<full message name>", "text": "<a JSON document>"}}: answered by the
 *       drifts {@code Drift.find} finds in it, {@code [{"path", "kind", "detail"}, ...]}.
 * </ul>
 */
public final class AnswerLines {
  private AnswerLines() {}

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

  private static JsonElement answer(JsonObject question) throws Exception {
    if (question.has("text")) {
      return drifts(question);
    }
    return verdict(question);
  }

  private static JsonArray drifts(JsonObject question) throws Exception {
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

  private static JsonObject verdict(JsonObject question) throws Exception {
    String type = question.get("type").getAsString();
    byte[] binary = Base64.getDecoder().decode(question.get("binary").getAsString());
    Message message;
    if (question.has("file")) {
      message = DynamicMessage.parseFrom(ofFile(question.get("file").getAsString(), type), binary);
    } else {
      // java_multiple_files: each top-level message of io.auxia.decision.model is a class.
      Class<?> generated = Class.forName(type);
      Message prototype = (Message) generated.getMethod("getDefaultInstance").invoke(null);
      message = prototype.getParserForType().parseFrom(binary);
    }
    Validation.Result result = Validation.validate(message);
    JsonObject answer = new JsonObject();
    answer.add("errors", pairs(result.errors()));
    answer.add("warnings", pairs(result.warnings()));
    return answer;
  }

  /** A message type of a file of the test's own, whose imports are the jar's files. */
  private static Descriptor ofFile(String file, String type) throws Exception {
    ExtensionRegistry extensions = ExtensionRegistry.newInstance();
    extensions.add(FieldBehaviorProto.fieldBehavior);
    extensions.add(FieldRulesProto.fieldRules);
    extensions.add(FieldRulesProto.messageRules);
    extensions.add(OneofBehaviorProto.oneofRequired);
    FileDescriptorProto proto =
        FileDescriptorProto.parseFrom(Base64.getDecoder().decode(file), extensions);
    FileDescriptor built =
        FileDescriptor.buildFrom(
            proto,
            new FileDescriptor[] {
              FieldBehaviorProto.getDescriptor(),
              FieldRulesProto.getDescriptor(),
              OneofBehaviorProto.getDescriptor()
            });
    return built.findMessageTypeByName(type.substring(type.lastIndexOf('.') + 1));
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
