package io.auxia.decision.client;

import com.google.api.FieldBehavior;
import com.google.api.FieldBehaviorProto;
import com.google.protobuf.Any;
import com.google.protobuf.ByteString;
import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Descriptors.EnumDescriptor;
import com.google.protobuf.Descriptors.EnumValueDescriptor;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Descriptors.OneofDescriptor;
import com.google.protobuf.Message;
import com.google.rpc.BadRequest;
import com.google.rpc.Code;
import com.google.rpc.Status;
import io.auxia.decision.model.FieldRules;
import io.auxia.decision.model.FieldRulesProto;
import io.auxia.decision.model.MessageRules;
import io.auxia.decision.model.OneofBehaviorProto;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * Request validation read from the descriptors, as the Python package's {@code validate}.
 *
 * <p>Every rule is written once, in the protos: {@code google.api.field_behavior} (REQUIRED,
 * OUTPUT_ONLY), {@code oneof_required}, and {@code field_rules} / {@code message_rules}
 * ({@code auxia/decision/model/field_rules.proto}). The violations, their JSON paths, their order
 * and their words are Python's (a test holds the three languages to the same verdicts on drawn
 * requests).
 */
public final class Validation {
  /** What validation says of a REQUIRED field that is not set. */
  private static final String REQUIRED = "required";

  private static final Map<Descriptor, Rules> RULES = new ConcurrentHashMap<>();

  private Validation() {}

  /** What {@link #validate} found: errors make a request invalid; warnings do not. */
  public static final class Result {
    private final List<BadRequest.FieldViolation> errors;
    private final List<BadRequest.FieldViolation> warnings;

    private Result(List<BadRequest.FieldViolation> errors, List<BadRequest.FieldViolation> warnings) {
      this.errors = Collections.unmodifiableList(errors);
      this.warnings = Collections.unmodifiableList(warnings);
    }

    /**
     * Returns each violation by the JSON path of its field ({@code surfaces[0].surface}).
     *
     * @return the errors, in the order Python gives them
     */
    public List<BadRequest.FieldViolation> errors() {
      return errors;
    }

    /**
     * Returns the OUTPUT_ONLY fields the request set: a server ignores them (AIP-203).
     *
     * @return the warnings
     */
    public List<BadRequest.FieldViolation> warnings() {
      return warnings;
    }

    /**
     * Returns whether the request has no errors.
     *
     * @return true when {@link #errors} is empty
     */
    public boolean ok() {
      return errors.isEmpty();
    }
  }

  /**
   * Returns every violation of a request message at once; the message is not changed.
   *
   * <p>Checks REQUIRED fields (a proto3 scalar holding its default value counts as missing), oneofs
   * marked {@code oneof_required}, the {@code field_rules} of values (patterns, minimums), enum
   * values the schema defines, and the {@code message_rules} across fields, at any depth;
   * OUTPUT_ONLY fields that are set are warnings: the rules written in the protos, before anything
   * is sent. The server checks more (a minimum count above the maximum, a surface or a data field
   * its project lacks, an attribute given twice or of another type).
   *
   * @param message the request
   * @return its errors and warnings
   */
  public static Result validate(Message message) {
    List<BadRequest.FieldViolation> errors = new ArrayList<>();
    List<BadRequest.FieldViolation> warnings = new ArrayList<>();
    walk(message, "", errors, warnings);
    return new Result(errors, warnings);
  }

  /**
   * Validates a request; throws an {@link ApiError} ({@code INVALID_ARGUMENT}, a {@code BadRequest}
   * naming each bad field, no HTTP status) when it has errors.
   *
   * @param message the request
   * @return the result, with its warnings
   * @throws ApiError when the request has errors
   */
  public static Result checkRequest(Message message) {
    Result result = validate(message);
    List<BadRequest.FieldViolation> errors = result.errors();
    if (!errors.isEmpty()) {
      String text = "the request has " + errors.size() + " invalid fields";
      if (errors.size() == 1) {
        BadRequest.FieldViolation only = errors.get(0);
        text =
            only.getField().isEmpty()
                ? only.getDescription()
                : only.getField() + ": " + only.getDescription();
      }
      Status status =
          Status.newBuilder()
              .setCode(Code.INVALID_ARGUMENT_VALUE)
              .setMessage(text)
              .addDetails(Any.pack(BadRequest.newBuilder().addAllFieldViolations(errors).build()))
              .build();
      throw ApiError.withStatus(status, 0);
    }
    return result;
  }

  /** What validation checks of one field, read once from its options. */
  private static final class FieldRule {
    final FieldDescriptor field;
    final boolean outputOnly;
    final boolean required;
    /** What is wrong with one value that is not the default, or null; null: no value rules. */
    final Function<Object, String> valueCheck;

    FieldRule(FieldDescriptor field) {
      List<FieldBehavior> behaviors = field.getOptions().getExtension(FieldBehaviorProto.fieldBehavior);
      this.field = field;
      this.outputOnly = behaviors.contains(FieldBehavior.OUTPUT_ONLY);
      this.required = behaviors.contains(FieldBehavior.REQUIRED);
      this.valueCheck = valueCheckOf(field);
    }
  }

  /** The rules of a message type: its fields worth looking at, required oneofs, groups. */
  private static final class Rules {
    final List<FieldRule> fields = new ArrayList<>();
    final List<OneofDescriptor> requiredOneofs = new ArrayList<>();
    final List<List<FieldDescriptor>> atLeastOneOf = new ArrayList<>();

    Rules(Descriptor descriptor) {
      for (FieldDescriptor field : descriptor.getFields()) {
        FieldRule rule = new FieldRule(field);
        // A field with nothing to check and no message inside is never looked at.
        if (rule.outputOnly
            || rule.required
            || rule.valueCheck != null
            || field.getJavaType() == FieldDescriptor.JavaType.MESSAGE) {
          fields.add(rule);
        }
      }
      for (OneofDescriptor oneof : descriptor.getOneofs()) {
        if (oneof.getOptions().getExtension(OneofBehaviorProto.oneofRequired)) {
          requiredOneofs.add(oneof);
        }
      }
      MessageRules rules = descriptor.getOptions().getExtension(FieldRulesProto.messageRules);
      for (MessageRules.FieldGroup group : rules.getAtLeastOneOfList()) {
        List<FieldDescriptor> fields = new ArrayList<>();
        for (String name : group.getFieldsList()) {
          FieldDescriptor field = descriptor.findFieldByName(name);
          if (field == null) {
            throw new IllegalStateException(
                descriptor.getFullName() + "'s message_rules name no field " + name);
          }
          fields.add(field);
        }
        atLeastOneOf.add(fields);
      }
    }
  }

  private static Function<Object, String> valueCheckOf(FieldDescriptor field) {
    FieldRules rules = field.getOptions().getExtension(FieldRulesProto.fieldRules);
    List<Function<Object, String>> checks = new ArrayList<>();
    if (!rules.getPattern().isEmpty()) {
      // As Python's re reads it: a final $ the end (Java's would also match before a final
      // line terminator), . any character but a newline, \d any decimal digit.
      String source = rules.getPattern();
      if (source.endsWith("$") && !source.endsWith("\\$")) {
        source = source.substring(0, source.length() - 1) + "\\z";
      }
      Pattern pattern =
          Pattern.compile(source, Pattern.UNIX_LINES | Pattern.UNICODE_CHARACTER_CLASS);
      String wanted =
          rules.getPatternDescription().isEmpty()
              ? "a match of " + rules.getPattern()
              : rules.getPatternDescription();
      checks.add(
          value ->
              pattern.matcher(value.toString()).find()
                  ? null
                  : "\"" + value + "\" is not " + wanted);
    }
    if (rules.hasMinimum()) {
      long minimum = rules.getMinimum();
      String wording = minimum == 0 ? "must not be negative" : "must be at least " + minimum;
      checks.add(value -> atLeast(field, (Number) value, minimum) ? null : wording);
    }
    if (field.getJavaType() == FieldDescriptor.JavaType.ENUM) {
      EnumDescriptor values = field.getEnumType();
      String names =
          values.getValues().stream().map(EnumValueDescriptor::getName).collect(Collectors.joining(", "));
      checks.add(
          value -> {
            int number = ((EnumValueDescriptor) value).getNumber();
            return values.findValueByNumber(number) != null
                ? null
                : number + " is not a value of " + values.getName() + ": expected one of " + names;
          });
    }
    if (checks.isEmpty()) {
      return null;
    }
    return value -> {
      for (Function<Object, String> check : checks) {
        String problem = check.apply(value);
        if (problem != null) {
          return problem;
        }
      }
      return null;
    };
  }

  /** Whether a number is at least the minimum: unsigned integers as such, NaN never. */
  private static boolean atLeast(FieldDescriptor field, Number value, long minimum) {
    switch (field.getType()) {
      case DOUBLE:
      case FLOAT:
        return value.doubleValue() >= minimum;
      case UINT32:
      case FIXED32:
        return Integer.toUnsignedLong(value.intValue()) >= minimum;
      case UINT64:
      case FIXED64:
        return minimum < 0 || Long.compareUnsigned(value.longValue(), minimum) >= 0;
      default:
        return value.longValue() >= minimum;
    }
  }

  private static BadRequest.FieldViolation violation(String field, String description) {
    return BadRequest.FieldViolation.newBuilder().setField(field).setDescription(description).build();
  }

  private static void walk(
      Message message,
      String path,
      List<BadRequest.FieldViolation> errors,
      List<BadRequest.FieldViolation> warnings) {
    Rules rules = RULES.computeIfAbsent(message.getDescriptorForType(), Rules::new);
    for (FieldRule rule : rules.fields) {
      FieldDescriptor field = rule.field;
      String fieldPath = DriftFinder.memberPath(path, field.getJsonName());
      boolean present = isSet(message, field);
      if (rule.outputOnly && present) {
        warnings.add(violation(fieldPath, "output only: the value was ignored"));
        continue;
      }
      if (rule.required && !present) {
        errors.add(violation(fieldPath, REQUIRED));
        continue;
      }
      if (present && rule.valueCheck != null) {
        valueViolations(message, field, rule.valueCheck, fieldPath, errors);
      }
      if (present && field.getJavaType() == FieldDescriptor.JavaType.MESSAGE) {
        walkChildren(message, field, fieldPath, errors, warnings);
      }
    }
    for (OneofDescriptor oneof : rules.requiredOneofs) {
      if (!message.hasOneof(oneof)) {
        String names =
            oneof.getFields().stream()
                .map(FieldDescriptor::getJsonName)
                .collect(Collectors.joining(", "));
        errors.add(
            violation(
                DriftFinder.memberPath(path, oneof.getField(0).getJsonName()),
                REQUIRED + ": set exactly one of " + names));
      }
    }
    for (List<FieldDescriptor> group : rules.atLeastOneOf) {
      if (group.stream().noneMatch(field -> hasValue(message, field))) {
        String names =
            group.stream().map(FieldDescriptor::getJsonName).collect(Collectors.joining(" or "));
        errors.add(
            violation(
                DriftFinder.memberPath(path, group.get(0).getJsonName()), REQUIRED + ": set " + names));
      }
    }
  }

  /** Whether a field is set: items in a list or map, presence, or a value not the default. */
  private static boolean isSet(Message message, FieldDescriptor field) {
    if (field.isRepeated()) {
      return message.getRepeatedFieldCount(field) > 0;
    }
    if (field.hasPresence()) {
      return message.hasField(field);
    }
    return !isDefault(message.getField(field));
  }

  /** Whether a field holds something other than its default (an empty {@code optional} does not). */
  private static boolean hasValue(Message message, FieldDescriptor field) {
    if (field.isRepeated()) {
      return message.getRepeatedFieldCount(field) > 0;
    }
    if (field.getJavaType() == FieldDescriptor.JavaType.MESSAGE) {
      return message.hasField(field);
    }
    return !isDefault(message.getField(field));
  }

  /** Whether a scalar or enum value is what proto3 leaves out: 0 (and -0.0), "", false, no bytes. */
  private static boolean isDefault(Object value) {
    if (value instanceof EnumValueDescriptor) {
      return ((EnumValueDescriptor) value).getNumber() == 0;
    }
    if (value instanceof String) {
      return ((String) value).isEmpty();
    }
    if (value instanceof ByteString) {
      return ((ByteString) value).isEmpty();
    }
    if (value instanceof Boolean) {
      return !((Boolean) value);
    }
    if (value instanceof Double || value instanceof Float) {
      return ((Number) value).doubleValue() == 0.0;
    }
    return ((Number) value).longValue() == 0;
  }

  private static void valueViolations(
      Message message,
      FieldDescriptor field,
      Function<Object, String> check,
      String fieldPath,
      List<BadRequest.FieldViolation> errors) {
    if (field.isRepeated()) {
      int count = message.getRepeatedFieldCount(field);
      for (int index = 0; index < count; index++) {
        String problem = check.apply(message.getRepeatedField(field, index));
        if (problem != null) {
          errors.add(violation(fieldPath + "[" + index + "]", problem));
        }
      }
      return;
    }
    Object value = message.getField(field);
    if (!isDefault(value)) {
      String problem = check.apply(value);
      if (problem != null) {
        errors.add(violation(fieldPath, problem));
      }
    }
  }

  /** Walks the messages a field holds: a map's by key, in Python's order (code points). */
  private static void walkChildren(
      Message message,
      FieldDescriptor field,
      String fieldPath,
      List<BadRequest.FieldViolation> errors,
      List<BadRequest.FieldViolation> warnings) {
    if (field.isMapField()) {
      FieldDescriptor keyField = field.getMessageType().findFieldByName("key");
      FieldDescriptor valueField = field.getMessageType().findFieldByName("value");
      if (valueField.getJavaType() != FieldDescriptor.JavaType.MESSAGE) {
        return;
      }
      List<Message> entries = new ArrayList<>();
      for (int index = 0; index < message.getRepeatedFieldCount(field); index++) {
        entries.add((Message) message.getRepeatedField(field, index));
      }
      Comparator<Object> order = keyOrder(keyField);
      entries.sort(Comparator.comparing(entry -> entry.getField(keyField), order));
      for (Message entry : entries) {
        String key = keyText(keyField, entry.getField(keyField));
        walk((Message) entry.getField(valueField), fieldPath + "[\"" + key + "\"]", errors, warnings);
      }
    } else if (field.isRepeated()) {
      for (int index = 0; index < message.getRepeatedFieldCount(field); index++) {
        walk(
            (Message) message.getRepeatedField(field, index),
            fieldPath + "[" + index + "]",
            errors,
            warnings);
      }
    } else {
      walk((Message) message.getField(field), fieldPath, errors, warnings);
    }
  }

  /** Python's order of map keys: strings by code point (not by UTF-16 unit), numbers by value. */
  private static Comparator<Object> keyOrder(FieldDescriptor key) {
    switch (key.getType()) {
      case STRING:
        return (left, right) ->
            Arrays.compare(
                ((String) left).codePoints().toArray(), ((String) right).codePoints().toArray());
      case UINT32:
      case FIXED32:
        return (left, right) -> Integer.compareUnsigned((Integer) left, (Integer) right);
      case UINT64:
      case FIXED64:
        return (left, right) -> Long.compareUnsigned((Long) left, (Long) right);
      default: // signed integers, booleans (false first)
        return (left, right) -> {
          @SuppressWarnings("unchecked")
          Comparable<Object> comparable = (Comparable<Object>) left;
          return comparable.compareTo(right);
        };
    }
  }

  /** A map key as its JSON member name is written: {@code true}, {@code 42}, unsigned as such. */
  private static String keyText(FieldDescriptor key, Object value) {
    switch (key.getType()) {
      case UINT32:
      case FIXED32:
        return Integer.toUnsignedString((Integer) value);
      case UINT64:
      case FIXED64:
        return Long.toUnsignedString((Long) value);
      default:
        return String.valueOf(value);
    }
  }
}
