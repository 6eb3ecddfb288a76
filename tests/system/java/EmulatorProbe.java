import io.auxia.decision.testing.AuxiaEmulator;
import io.auxia.decision.testing.EmulatorStartException;
import java.nio.file.Path;

/**
 * What the Java tests of AuxiaEmulator drive from pytest: a JVM that starts an emulator, says so
 * on one line, and then waits (to be killed) or stops it.
 *
 * <p>{@code EmulatorProbe hold|stop COMMAND [SEED]}: start with COMMAND (the auxia-decision to
 * run) and the seed file SEED if given; print {@code started PID URL}, or {@code failed
 * MESSAGE}, or {@code missing MESSAGE}; then {@code hold} sleeps until killed and {@code stop}
 * closes the emulator and prints {@code stopped}.
 */
public final class EmulatorProbe {
  private EmulatorProbe() {}

  public static void main(String[] args) throws Exception {
    AuxiaEmulator.Builder builder = AuxiaEmulator.builder().command(args[1]);
    if (args.length > 2) {
      builder.seed(Path.of(args[2]));
    }
    AuxiaEmulator emulator;
    try {
      emulator = builder.start();
    } catch (EmulatorStartException error) {
      System.out.println("failed " + error.getMessage());
      System.out.println("reason " + error.reason());
      return;
    }
    System.out.println("started " + emulator.pid() + " " + emulator.baseUrl());
    System.out.flush();
    if (args[0].equals("hold")) {
      Thread.sleep(120_000);
    }
    emulator.close();
    System.out.println("stopped");
  }
}
