import io.auxia.decision.model.GetTreatmentsRequest;
import io.auxia.decision.model.SurfaceRequest;
import io.auxia.decision.testing.AuxiaEmulator;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;

/**
 * Times AuxiaEmulator in one JVM, one run per line read: from the start of {@code start()} to a
 * served GetTreatments, then {@code close()}. {@code BenchEmulator COMMAND} answers each line
 * of its input with {@code START_MS CLOSE_MS}, so that its runs can alternate with a baseline's.
 */
public final class BenchEmulator {
  private BenchEmulator() {}

  public static void main(String[] args) throws Exception {
    BufferedReader input =
        new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    for (int run = 0; input.readLine() != null; run++) {
      long began = System.nanoTime();
      AuxiaEmulator emulator = AuxiaEmulator.builder().command(args[0]).start();
      int served =
          emulator
              .client()
              .getTreatments(
                  GetTreatmentsRequest.newBuilder()
                      .setProjectId(emulator.projectId())
                      .setUserId("bench-" + run)
                      .addSurfaces(SurfaceRequest.newBuilder().setSurface("CART_SCREEN"))
                      .build())
              .getUserTreatmentsCount();
      long ready = System.nanoTime();
      emulator.close();
      long closed = System.nanoTime();
      if (served != 1) {
        throw new IllegalStateException("GetTreatments served " + served + " treatments, not 1");
      }
      System.out.println((ready - began) / 1e6 + " " + (closed - ready) / 1e6);
      System.out.flush();
    }
  }
}
