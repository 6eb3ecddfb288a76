package com.example.cart;

import io.auxia.decision.client.ApiError;
import io.auxia.decision.client.AuxiaClient;
import io.auxia.decision.model.GetTreatmentsRequest;
import io.auxia.decision.model.GetTreatmentsResponse;
import io.auxia.decision.model.LogTreatmentInteractionRequest;
import io.auxia.decision.model.LogTreatmentInteractionRequest.InteractionType;
import io.auxia.decision.model.SurfaceRequest;
import io.auxia.decision.model.UserTreatment;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Optional;

/** The banner of a shop's cart page, chosen by Auxia: a service that calls the API. */
public final class CartBanners {
  static final String SURFACE = "CART_SCREEN";

  private final AuxiaClient auxia;
  private final String projectId;

  /** A treatment shown on the cart page. */
  public record Banner(String treatmentId, String trackingId, String content) {}

  /**
   * Makes the service.
   *
   * @param auxia a client of the Auxia API
   * @param projectId the Auxia project
   */
  public CartBanners(AuxiaClient auxia, String projectId) {
    this.auxia = auxia;
    this.projectId = projectId;
  }

  /**
   * Returns the banner to show a user, logged as VIEWED; empty when Auxia has none or fails.
   *
   * @param userId the shopper
   * @return the banner
   */
  public Optional<Banner> bannerFor(String userId) {
    GetTreatmentsResponse response;
    try {
      response =
          auxia.getTreatments(
              GetTreatmentsRequest.newBuilder()
                  .setProjectId(projectId)
                  .setUserId(userId)
                  .addSurfaces(SurfaceRequest.newBuilder().setSurface(SURFACE))
                  .build());
    } catch (ApiError error) {
      return Optional.empty(); // the page works without a banner
    }
    if (response.getUserTreatmentsCount() == 0) {
      return Optional.empty();
    }
    UserTreatment chosen = response.getUserTreatments(0);
    Banner banner =
        new Banner(
            chosen.getTreatmentId(), chosen.getTreatmentTrackingId(), chosen.getTreatmentContent());
    log(userId, banner, InteractionType.VIEWED);
    return Optional.of(banner);
  }

  /**
   * Tells Auxia the user closed the banner.
   *
   * @param userId the shopper
   * @param banner the banner they closed
   */
  public void dismiss(String userId, Banner banner) {
    log(userId, banner, InteractionType.DISMISSED);
  }

  private void log(String userId, Banner banner, InteractionType kind) {
    auxia.logTreatmentInteraction(
        LogTreatmentInteractionRequest.newBuilder()
            .setProjectId(projectId)
            .setUserId(userId)
            .setTreatmentId(banner.treatmentId())
            .setTreatmentTrackingId(banner.trackingId())
            .setInteractionType(kind)
            .setInteractionTimeMicros(ChronoUnit.MICROS.between(Instant.EPOCH, Instant.now()))
            .setSurface(SURFACE)
            .build());
  }
}
