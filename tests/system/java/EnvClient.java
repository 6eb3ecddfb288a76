import io.auxia.decision.client.AuxiaClient;
import io.auxia.decision.model.GetTreatmentsRequest;
import io.auxia.decision.model.SurfaceRequest;

/**
 * A process configured by the environment alone: {@code AuxiaClient.builder().build()} reads
 * AUXIA_BASE_URL and AUXIA_API_KEY. Prints the treatment served to PROJECT_ID's user {@code u},
 * or the message of the client's refusal to be built.
 */
public final class EnvClient {
  private EnvClient() {}

  public static void main(String[] args) {
    AuxiaClient client;
    try {
      client = AuxiaClient.builder().build();
    } catch (IllegalArgumentException error) {
      System.out.println(error.getMessage());
      return;
    }
    System.out.println(
        client
            .getTreatments(
                GetTreatmentsRequest.newBuilder()
                    .setProjectId("PROJECT_ID")
                    .setUserId("u")
                    .addSurfaces(SurfaceRequest.newBuilder().setSurface("CART_SCREEN"))
                    .build())
            .getUserTreatments(0)
            .getTreatmentId());
  }
}
