package io.auxia.decision.testing;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;
import com.google.protobuf.util.JsonFormat;
import io.auxia.decision.client.AuxiaClient;
import io.auxia.decision.server.Seed;
import java.io.File;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A local Auxia server for a test suite: {@code auxia-decision serve} started on free loopback
 * ports, with an in-memory store, by the start contract (a ready file; the server stops with
 * this JVM, even when it is killed).
 *
 * <pre>{@code
 * try (AuxiaEmulator emulator = AuxiaEmulator.start()) {
 *   AuxiaClient client = emulator.client();
 *   ...
 *   emulator.admin().listInteractions();
 * }
 * }</pre>
 *
 * <p>{@code auxia-decision} is looked for on the {@code PATH} ({@code pipx install
 * 'auxia-decision-api[server]'}), or named by {@link Builder#command}. {@link #close()} stops the
 * server (SIGTERM, then SIGKILL after the builder's stop timeout).
 */
public final class AuxiaEmulator implements AutoCloseable {
  /** The command run when none is given: {@code auxia-decision}, found on the PATH. */
  public static final String DEFAULT_COMMAND = "auxia-decision";

  /** How to get the command when it is missing: the end of a one-line message. */
  public static final String INSTALL_HINT =
      "install it with pipx install 'auxia-decision-api[server]', "
          + "or pass its path to AuxiaEmulator.builder().command(...)";

  private static final long POLL_MILLIS = 5;

  private final Process process;
  private final OutputStream stdin;
  private final Path folder;
  private final Duration stopTimeout;
  private final Thread shutdownHook;
  private final String baseUrl;
  private final String grpcTarget;
  private final long pid;
  private final String projectId;
  private final String apiKey;
  private final String adminKey;
  private EmulatorAdmin admin;
  private AuxiaClient client;
  private boolean closed;

  private AuxiaEmulator(Process process, Path folder, Duration stopTimeout, JsonObject ready) {
    this.process = process;
    this.stdin = process.getOutputStream();
    this.folder = folder;
    this.stopTimeout = stopTimeout;
    this.baseUrl = ready.get("restUrl").getAsString();
    this.grpcTarget = ready.get("grpcTarget").getAsString();
    this.pid = ready.get("pid").getAsLong();
    this.projectId = ready.get("projectId").getAsString();
    this.apiKey = ready.get("apiKey").getAsString();
    JsonElement key = ready.get("adminKey");
    this.adminKey = key == null || key.isJsonNull() ? null : key.getAsString();
    this.shutdownHook = new Thread(this::stop, "auxia-emulator-stop");
    Runtime.getRuntime().addShutdownHook(shutdownHook);
  }

  /**
   * Starts an emulator with the defaults: {@code auxia-decision} from the PATH, the docs' world,
   * an in-memory store.
   *
   * @return the running emulator
   * @throws EmulatorStartException when it cannot start
   */
  public static AuxiaEmulator start() {
    return builder().start();
  }

  /** {@return a builder of an emulator} */
  public static Builder builder() {
    return new Builder();
  }

  /** {@return the REST base URL, {@code http://127.0.0.1:<port>}} */
  public String baseUrl() {
    return baseUrl;
  }

  /** {@return the gRPC target, {@code 127.0.0.1:<port>}} */
  public String grpcTarget() {
    return grpcTarget;
  }

  /** {@return the server's process id} */
  public long pid() {
    return pid;
  }

  /** {@return the seed's first project ({@code PROJECT_ID} in the docs' world)} */
  public String projectId() {
    return projectId;
  }

  /** {@return the first API key of the seed's first project ({@code TEST_API_KEY})} */
  public String apiKey() {
    return apiKey;
  }

  /** {@return the seed's first admin key; empty when the seed has none (no admin API)} */
  public Optional<String> adminKey() {
    return Optional.ofNullable(adminKey);
  }

  /**
   * Returns the environment a client of this emulator reads: {@code AUXIA_BASE_URL}, {@code
   * AUXIA_GRPC_TARGET}, {@code AUXIA_API_KEY} and, when there is one, {@code
   * AUXIA_EMULATOR_ADMIN_KEY}; for a process started with {@code ProcessBuilder.environment()}.
   *
   * @return the variables, in that order
   */
  public Map<String, String> environment() {
    Map<String, String> variables = new LinkedHashMap<>();
    variables.put("AUXIA_BASE_URL", baseUrl);
    variables.put("AUXIA_GRPC_TARGET", grpcTarget);
    variables.put("AUXIA_API_KEY", apiKey);
    if (adminKey != null) {
      variables.put("AUXIA_EMULATOR_ADMIN_KEY", adminKey);
    }
    return variables;
  }

  /**
   * Returns a client of the emulator's Auxia API, with its base URL and API key.
   *
   * @return the client (one per emulator)
   */
  public synchronized AuxiaClient client() {
    if (client == null) {
      client = AuxiaClient.builder().baseUrl(baseUrl).apiKey(apiKey).build();
    }
    return client;
  }

  /**
   * Returns a builder of a client of the emulator's Auxia API, its base URL and API key set: for a
   * client of your own options ({@code strictResponses(true)}, {@code onDrift}, a retry policy).
   *
   * @return the builder
   */
  public AuxiaClient.Builder clientBuilder() {
    return AuxiaClient.builder().baseUrl(baseUrl).apiKey(apiKey);
  }

  /**
   * Returns a client of the emulator admin API, with the seed's admin key.
   *
   * @return the client (one per emulator)
   * @throws IllegalStateException when the seed has no admin key
   */
  public synchronized EmulatorAdmin admin() {
    if (adminKey == null) {
      throw new IllegalStateException(
          "the emulator's seed has no admin key (adminKeys), so its admin API is off");
    }
    if (admin == null) {
      admin = new EmulatorAdmin(baseUrl, adminKey);
    }
    return admin;
  }

  /** Stops the server: SIGTERM, then SIGKILL after the stop timeout; again, it does nothing. */
  @Override
  public void close() {
    try {
      Runtime.getRuntime().removeShutdownHook(shutdownHook);
    } catch (IllegalStateException shuttingDown) {
      // the hook runs, or has run, stop() itself
    }
    stop();
  }

  private synchronized void stop() {
    if (closed) {
      return;
    }
    closed = true;
    terminate(process, stopTimeout);
    try {
      stdin.close();
    } catch (IOException ignored) {
      // the server is gone: nothing reads the pipe
    }
    deleteFolder(folder);
  }

  /** Stops a process: SIGTERM, a wait, then SIGKILL of it and of its children. */
  private static void terminate(Process process, Duration timeout) {
    process.destroy();
    try {
      if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
        process.descendants().forEach(ProcessHandle::destroyForcibly);
        process.destroyForcibly();
        process.waitFor();
      }
    } catch (InterruptedException interrupted) {
      process.descendants().forEach(ProcessHandle::destroyForcibly);
      process.destroyForcibly();
      Thread.currentThread().interrupt();
    }
  }

  private static void deleteFolder(Path folder) {
    try (Stream<Path> paths = Files.walk(folder)) {
      paths.sorted(Comparator.reverseOrder()).map(Path::toFile).forEach(File::delete);
    } catch (IOException | UncheckedIOException ignored) {
      // a temporary folder left behind is harmless
    }
  }

  /** Configures and starts an {@link AuxiaEmulator}. */
  public static final class Builder {
    private List<String> command = List.of(DEFAULT_COMMAND);
    private String database = ":memory:";
    private Path seed;
    private Seed seedMessage;
    private String clock;
    private final List<String> arguments = new ArrayList<>();
    private Duration startTimeout = Duration.ofSeconds(60);
    private Duration stopTimeout = Duration.ofSeconds(10);

    private Builder() {}

    /**
     * Sets the command that runs {@code auxia-decision}.
     *
     * @param words the program and its first arguments: a path ({@code
     *     .venv/bin/auxia-decision}), or {@code uvx --from auxia-decision-api[server]
     *     auxia-decision}; by default {@code auxia-decision} from the PATH
     * @return this builder
     */
    public Builder command(String... words) {
      if (words.length == 0) {
        throw new IllegalArgumentException("the command needs at least a program");
      }
      this.command = List.of(words);
      return this;
    }

    /**
     * Sets the seed: the world the server starts with.
     *
     * @param file a seed file (proto JSON of {@code io.auxia.decision.server.Seed}); by default
     *     the docs' world
     * @return this builder
     */
    public Builder seed(Path file) {
      this.seed = file;
      this.seedMessage = null;
      return this;
    }

    /**
     * Sets the seed: the world the server starts with, written to a file of the emulator's.
     *
     * @param world the seed; the server checks it, and fills in what a seed may leave out
     * @return this builder
     */
    public Builder seed(Seed world) {
      this.seedMessage = world;
      this.seed = null;
      return this;
    }

    /**
     * Sets the store.
     *
     * @param db an SQLite file, kept across starts, or {@code :memory:} (the default)
     * @return this builder
     */
    public Builder database(String db) {
      this.database = db;
      return this;
    }

    /**
     * Starts the clock frozen at a time (the admin API moves it).
     *
     * @param time an RFC 3339 time, such as {@code 2030-01-01T00:00:00Z}; by default the
     *     system's time
     * @return this builder
     */
    public Builder clock(String time) {
      this.clock = time;
      return this;
    }

    /**
     * Adds arguments of {@code auxia-decision serve} ({@code --log-level INFO}).
     *
     * @param words the arguments
     * @return this builder
     */
    public Builder arguments(String... words) {
      this.arguments.addAll(List.of(words));
      return this;
    }

    /**
     * Sets how long the server may take to start.
     *
     * @param timeout the time; by default 60 s
     * @return this builder
     */
    public Builder startTimeout(Duration timeout) {
      this.startTimeout = timeout;
      return this;
    }

    /**
     * Sets how long {@link AuxiaEmulator#close()} waits after SIGTERM before SIGKILL.
     *
     * @param timeout the time; by default 10 s
     * @return this builder
     */
    public Builder stopTimeout(Duration timeout) {
      this.stopTimeout = timeout;
      return this;
    }

    /**
     * Starts the server and waits until it serves.
     *
     * @return the running emulator
     * @throws EmulatorStartException when it cannot start, with the server's one-line reason; no
     *     process is left
     */
    public AuxiaEmulator start() {
      String program = resolve(command.get(0));
      Path folder;
      try {
        folder = Files.createTempDirectory("auxia-emulator-");
      } catch (IOException error) {
        throw new EmulatorStartException(
            "cannot make a temporary folder for the emulator: " + error.getMessage(),
            error.getMessage(),
            error);
      }
      Path ready = folder.resolve("ready.json");
      Path errors = folder.resolve("stderr.log");
      List<String> words = new ArrayList<>(command);
      words.set(0, program);
      words.addAll(
          List.of("serve", "--rest-port", "0", "--grpc-port", "0", "--db", database,
              "--ready-file", ready.toString(), "--exit-with-parent"));
      if (seed != null) {
        words.addAll(List.of("--seed", seed.toString()));
      } else if (seedMessage != null) {
        words.addAll(List.of("--seed", writeSeed(folder).toString()));
      }
      if (clock != null) {
        words.addAll(List.of("--clock", clock));
      }
      words.addAll(arguments);
      Process process;
      try {
        process =
            new ProcessBuilder(words)
                .redirectInput(ProcessBuilder.Redirect.PIPE)
                .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectError(errors.toFile())
                .start();
      } catch (IOException error) {
        deleteFolder(folder);
        String message = "cannot run " + program + ": " + error.getMessage();
        throw new EmulatorStartException(message, message, error);
      }
      try {
        JsonObject info = awaitReady(process, ready, errors);
        return new AuxiaEmulator(process, folder, stopTimeout, info);
      } catch (RuntimeException error) {
        terminate(process, Duration.ofSeconds(5));
        deleteFolder(folder);
        throw error;
      }
    }

    private Path writeSeed(Path folder) {
      Path file = folder.resolve("seed.json");
      try {
        Files.writeString(file, JsonFormat.printer().print(seedMessage), StandardCharsets.UTF_8);
      } catch (IOException error) {
        deleteFolder(folder);
        String message = "cannot write the seed to " + file + ": " + error.getMessage();
        throw new EmulatorStartException(message, message, error);
      }
      return file;
    }

    private JsonObject awaitReady(Process process, Path ready, Path errors) {
      long deadline = System.nanoTime() + startTimeout.toNanos();
      while (true) {
        if (Files.exists(ready)) {
          return readReady(ready);
        }
        if (!process.isAlive()) {
          String reason = lastLine(errors);
          throw new EmulatorStartException(
              "auxia-decision serve could not start (exit " + process.exitValue() + "): " + reason,
              reason,
              null);
        }
        if (System.nanoTime() > deadline) {
          String message =
              "auxia-decision serve wrote no ready file within " + startTimeout.toMillis() + " ms";
          throw new EmulatorStartException(message, message, null);
        }
        try {
          Thread.sleep(POLL_MILLIS);
        } catch (InterruptedException interrupted) {
          Thread.currentThread().interrupt();
          throw new EmulatorStartException(
              "interrupted while the emulator started", "interrupted", interrupted);
        }
      }
    }

    private static JsonObject readReady(Path ready) {
      try {
        JsonObject info =
            JsonParser.parseString(Files.readString(ready, StandardCharsets.UTF_8))
                .getAsJsonObject();
        for (String name : List.of("restUrl", "grpcTarget", "pid", "projectId", "apiKey")) {
          if (!info.has(name)) {
            throw new IllegalStateException("it has no " + name);
          }
        }
        return info;
      } catch (IOException | JsonParseException | IllegalStateException error) {
        String message = "the ready file " + ready + " cannot be read: " + error.getMessage();
        throw new EmulatorStartException(message, message, error);
      }
    }

    /** {@return the last line the server wrote on its standard error: its one-line reason} */
    private static String lastLine(Path errors) {
      try {
        List<String> lines = Files.readAllLines(errors, StandardCharsets.UTF_8);
        for (int index = lines.size() - 1; index >= 0; index--) {
          if (!lines.get(index).isBlank()) {
            return lines.get(index).strip();
          }
        }
      } catch (IOException ignored) {
        // fall through: no reason to quote
      }
      return "no reason given";
    }

    /** {@return the program's path: as given when it has a slash, else found on the PATH} */
    private static String resolve(String program) {
      if (program.contains(File.separator)) {
        if (!Files.isExecutable(Paths.get(program))) {
          throw missing(program + " is not installed (not an executable file)");
        }
        return program;
      }
      String path = Optional.ofNullable(System.getenv("PATH")).orElse("");
      for (String folder : path.split(File.pathSeparator)) {
        if (!folder.isEmpty()) {
          Path candidate = Paths.get(folder, program);
          if (Files.isExecutable(candidate) && !Files.isDirectory(candidate)) {
            return candidate.toString();
          }
        }
      }
      throw missing(program + " is not installed (not found on PATH)");
    }

    private static EmulatorStartException missing(String what) {
      String message = what + ": " + INSTALL_HINT;
      return new EmulatorStartException(message, message, null);
    }
  }
}
