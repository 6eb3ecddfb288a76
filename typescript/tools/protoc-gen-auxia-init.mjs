#!/usr/bin/env node
// @ts-check
// protoc-gen-auxia-init: the request types in which REQUIRED fields are required.
//
// protobuf-es makes every field of a message's init shape optional, so a
// request without its `userId` compiles and fails at run time. This plugin
// reads what the descriptors say, `(google.api.field_behavior) = REQUIRED`
// and `(io.auxia.decision.model.oneof_required)`, and writes for each
// message `M` of a `foo.proto` a type `MInit` in `foo_init.ts`: the init
// shape protobuf-es's `create()` takes, with those fields required, at any
// depth. It also writes, for each folder, `index.ts`: every `_pb` and `_init`
// module of the folder's files; and for each folder with services,
// `services.ts`: its services as a constant (what a client serves, read from
// the descriptors) and `RequestInits`, each request's init type by type name.
//
// Run by buf after protoc-gen-es (see ../buf.gen.yaml), with the same
// `target=ts` and `import_extension=js` options.

import { readFileSync } from "node:fs";

import { getOption, ScalarType } from "@bufbuild/protobuf";
import { createEcmaScriptPlugin, runNodeJs } from "@bufbuild/protoplugin";

/**
 * @typedef {import("@bufbuild/protobuf").DescMessage} DescMessage
 * @typedef {import("@bufbuild/protobuf").DescField} DescField
 * @typedef {import("@bufbuild/protobuf").DescOneof} DescOneof
 * @typedef {import("@bufbuild/protobuf").DescExtension} DescExtension
 * @typedef {import("@bufbuild/protobuf").DescFile} DescFile
 * @typedef {import("@bufbuild/protobuf").DescService} DescService
 * @typedef {import("@bufbuild/protoplugin").Schema} Schema
 * @typedef {import("@bufbuild/protoplugin").GeneratedFile} GeneratedFile
 * @typedef {import("@bufbuild/protoplugin").Printable} Printable
 */

const FIELD_BEHAVIOR = "google.api.field_behavior";
const ONEOF_REQUIRED = "io.auxia.decision.model.oneof_required";
/** google.api.FieldBehavior.REQUIRED */
const REQUIRED = 2;

const { version } = JSON.parse(
  readFileSync(new URL("../package.json", import.meta.url), "utf8"),
);

/**
 * The extension of this name among every file of the request, if any.
 *
 * @param {Schema} schema
 * @param {string} typeName
 * @returns {DescExtension | undefined}
 */
function findExtension(schema, typeName) {
  for (const file of schema.allFiles) {
    for (const extension of file.extensions) {
      if (extension.typeName === typeName) {
        return extension;
      }
    }
  }
  return undefined;
}

/** What the descriptors say is required. */
class Rules {
  /** @param {Schema} schema */
  constructor(schema) {
    this.fieldBehavior = findExtension(schema, FIELD_BEHAVIOR);
    this.oneofRequired = findExtension(schema, ONEOF_REQUIRED);
    /** @type {Set<string>} the type names of the files to generate */
    this.local = new Set();
    for (const file of schema.files) {
      for (const type of schema.typesInFile(file)) {
        if (type.kind === "message") {
          this.local.add(type.typeName);
        }
      }
    }
  }

  /**
   * Whether a field is `(google.api.field_behavior) = REQUIRED`.
   *
   * @param {DescField} field
   */
  fieldRequired(field) {
    if (this.fieldBehavior === undefined) {
      return false;
    }
    const behaviors = /** @type {unknown} */ (getOption(field, this.fieldBehavior));
    return Array.isArray(behaviors) && behaviors.includes(REQUIRED);
  }

  /**
   * Whether a oneof must have one of its fields set.
   *
   * @param {DescOneof} oneof
   */
  oneofIsRequired(oneof) {
    return this.oneofRequired !== undefined && getOption(oneof, this.oneofRequired) === true;
  }

  /**
   * Whether a message has an init type of this plugin (it is in a file to generate).
   *
   * @param {DescMessage} message
   */
  isLocal(message) {
    return this.local.has(message.typeName);
  }
}

/**
 * The TypeScript type of a scalar, as protobuf-es shapes it.
 *
 * @param {ScalarType} scalar
 * @param {boolean} longAsString
 * @returns {string}
 */
function scalarType(scalar, longAsString) {
  switch (scalar) {
    case ScalarType.STRING:
      return "string";
    case ScalarType.BOOL:
      return "boolean";
    case ScalarType.BYTES:
      return "Uint8Array";
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return longAsString ? "string" : "bigint";
    default:
      return "number";
  }
}

/** The name of a message's init type: its shape's name and `Init`. */
/**
 * @param {GeneratedFile} f
 * @param {DescMessage} message
 */
function initName(f, message) {
  return `${f.importShape(message).name}Init`;
}

/**
 * The `_init.ts` path of a proto file, relative to the output root.
 *
 * @param {DescFile} file
 */
function initPath(file) {
  return `${file.name}_init.ts`;
}

/**
 * Write the type of a message's value in an init: its init type, imported if needed.
 *
 * @param {GeneratedFile} f
 * @param {Rules} rules
 * @param {DescFile} here
 * @param {DescMessage} message
 * @returns {Printable}
 */
function messageInit(f, rules, here, message) {
  if (!rules.isLocal(message)) {
    return [f.import("MessageInitShape", "@bufbuild/protobuf", true), "<typeof ", f.importSchema(message, true), ">"];
  }
  const name = initName(f, message);
  if (message.file === here) {
    return name;
  }
  return f.import(name, `./${message.file.name}_init.js`, true);
}

/**
 * The type of a field's value in an init.
 *
 * @param {GeneratedFile} f
 * @param {Rules} rules
 * @param {DescFile} here
 * @param {DescField} field
 * @returns {Printable}
 */
function fieldInit(f, rules, here, field) {
  switch (field.fieldKind) {
    case "scalar":
      return scalarType(field.scalar, field.longAsString);
    case "enum":
      return f.importShape(field.enum);
    case "message":
      return messageInit(f, rules, here, field.message);
    case "list": {
      /** @type {Printable} */
      let element;
      switch (field.listKind) {
        case "scalar":
          element = scalarType(field.scalar, field.longAsString);
          break;
        case "enum":
          element = f.importShape(field.enum);
          break;
        case "message":
          element = ["(", messageInit(f, rules, here, field.message), ")"];
          break;
      }
      return [element, "[]"];
    }
    case "map": {
      const key =
        field.mapKey === ScalarType.STRING || field.mapKey === ScalarType.BOOL
          ? "string"
          : "number";
      /** @type {Printable} */
      let value;
      switch (field.mapKind) {
        case "scalar":
          value = scalarType(field.scalar, false);
          break;
        case "enum":
          value = f.importShape(field.enum);
          break;
        case "message":
          value = messageInit(f, rules, here, field.message);
          break;
      }
      return ["{ [key: ", key, "]: ", value, " }"];
    }
  }
}

/**
 * Write one message's init type.
 *
 * @param {GeneratedFile} f
 * @param {Rules} rules
 * @param {DescMessage} message
 */
function writeInit(f, rules, message) {
  const shape = f.importShape(message);
  const name = initName(f, message);
  f.print(
    f.jsDoc(
      `What \`create(${shape.name}Schema, init)\` takes, and a client's request of this type:\n` +
        `a ${shape.name}, or its fields with every REQUIRED field (and required oneof) set.\n\n` +
        `@generated from message ${message.typeName}`,
    ),
  );
  f.print(f.export("type", name), " = ", shape, " | {");
  for (const member of message.members) {
    if (member.kind === "field") {
      const optional = rules.fieldRequired(member) ? "" : "?";
      f.print(f.jsDoc(member, "  "));
      f.print("  ", member.localName, optional, ": ", fieldInit(f, rules, message.file, member), ";");
      continue;
    }
    const required = rules.oneofIsRequired(member);
    f.print(f.jsDoc(member, "  "));
    f.print("  ", member.localName, required ? "" : "?", ":");
    member.fields.forEach((field, index) => {
      const bar = index === 0 ? "    " : "    | ";
      f.print(
        bar,
        "{ case: ",
        f.string(field.localName),
        "; value: ",
        fieldInit(f, rules, message.file, field),
        " }",
      );
    });
    if (!required) {
      f.print("    | { case: undefined; value?: undefined }");
    }
    f.print("  ;");
  }
  f.print("};");
  f.print();
}

/**
 * Write `services.ts` of one package: its services, and its requests' init types by name.
 *
 * @param {Schema} schema
 * @param {Rules} rules
 * @param {string} path
 * @param {DescService[]} services
 */
function writeServices(schema, rules, path, services) {
  const { file } = /** @type {DescService} */ (services[0]);
  const f = schema.generateFile(path);
  f.preamble(file);
  f.print(
    f.jsDoc(`The services of ${file.proto.package}: what a client of the package serves.`),
  );
  f.print(
    f.export("const", "services"),
    " = ",
    f.array(services.map((service) => f.importSchema(service))),
    " as const;",
  );
  f.print();
  f.print(f.jsDoc("The init type of each request of the services, by the request's type name."));
  f.print(f.export("interface", "RequestInits"), " {");
  /** @type {Set<string>} */
  const seen = new Set();
  for (const service of services) {
    for (const method of service.methods) {
      if (seen.has(method.input.typeName)) {
        continue;
      }
      seen.add(method.input.typeName);
      const init = rules.isLocal(method.input)
        ? f.import(initName(f, method.input), `./${method.input.file.name}_init.js`, true)
        : messageInit(f, rules, method.input.file, method.input);
      f.print("  ", f.string(method.input.typeName), ": ", init, ";");
    }
  }
  f.print("}");
}

/** @param {Schema} schema */
function generateTs(schema) {
  const rules = new Rules(schema);
  /** @type {Map<string, DescService[]>} services by the folder of their file */
  const servicesByFolder = new Map();
  /** @type {Map<string, string[]>} the modules of each folder, relative to it */
  const modulesByFolder = new Map();
  for (const file of schema.files) {
    const folder = file.name.slice(0, file.name.lastIndexOf("/") + 1);
    const base = file.name.slice(folder.length);
    const modules = modulesByFolder.get(folder) ?? [];
    modulesByFolder.set(folder, modules);
    modules.push(`${base}_pb.js`);
    const messages = [...schema.typesInFile(file)].filter((type) => type.kind === "message");
    if (messages.length > 0) {
      modules.push(`${base}_init.js`);
      const f = schema.generateFile(initPath(file));
      f.preamble(file);
      for (const message of messages) {
        writeInit(f, rules, message);
      }
    }
    if (file.services.length > 0) {
      const known = servicesByFolder.get(folder) ?? [];
      servicesByFolder.set(folder, [...known, ...file.services]);
    }
  }
  for (const [folder, modules] of modulesByFolder) {
    const f = schema.generateFile(`${folder}index.ts`);
    f.print("// @generated by protoc-gen-auxia-init: every module of this folder.");
    for (const module of modules.sort()) {
      f.print(`export * from "./${module}";`);
    }
  }
  for (const [folder, services] of servicesByFolder) {
    services.sort((a, b) => a.typeName.localeCompare(b.typeName));
    writeServices(schema, rules, `${folder}services.ts`, services);
  }
}

runNodeJs(
  createEcmaScriptPlugin({
    name: "protoc-gen-auxia-init",
    version: `v${version}`,
    generateTs,
  }),
);
