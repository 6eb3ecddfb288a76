package com.example.cart;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.example.cart.CartBanners.Banner;
import com.google.rpc.Code;
import io.auxia.decision.emulator.v1.Fault;
import io.auxia.decision.emulator.v1.ListDecisionsRequest;
import io.auxia.decision.emulator.v1.ListInteractionsRequest;
import io.auxia.decision.emulator.v1.LoggedInteraction;
import io.auxia.decision.emulator.v1.ServedDecision;
import io.auxia.decision.model.ContentFieldDataType;
import io.auxia.decision.model.DeliveryType;
import io.auxia.decision.model.LogTreatmentInteractionRequest.InteractionType;
import io.auxia.decision.model.SurfacePb;
import io.auxia.decision.model.TreatmentContentFieldTypePb;
import io.auxia.decision.model.TreatmentTypePb;
import io.auxia.decision.server.Project;
import io.auxia.decision.server.Seed;
import io.auxia.decision.testing.AuxiaEmulator;
import io.auxia.decision.testing.EmulatorAdmin;
import java.time.Duration;
import java.util.List;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The cart banner against the local Auxia server: one emulator for the class, reset per test. */
class CartBannersTest {
  private static AuxiaEmulator auxia;
  private CartBanners banners;

  @BeforeAll
  static void startAuxia() {
    auxia = AuxiaEmulator.start();
  }

  @AfterAll
  static void stopAuxia() {
    auxia.close();
  }

  @BeforeEach
  void startFromTheSeed() {
    auxia.admin().reset();
    banners = new CartBanners(auxia.client(), auxia.projectId());
  }

  private static List<LoggedInteraction> interactionsOf(String userId) {
    return auxia.admin().listInteractions(
        ListInteractionsRequest.newBuilder().setUserId(userId).build());
  }

  @Test
  void theBannerShownIsLoggedAsViewed() {
    Banner banner = banners.bannerFor("shopper-1").orElseThrow();

    assertEquals("CART_REMINDER", banner.treatmentId());
    List<LoggedInteraction> viewed = interactionsOf("shopper-1");
    assertEquals(1, viewed.size());
    assertEquals(InteractionType.VIEWED, viewed.get(0).getInteraction().getInteractionType());
    assertEquals(banner.trackingId(), viewed.get(0).getInteraction().getTreatmentTrackingId());
    List<ServedDecision> decisions =
        auxia.admin().listDecisions(ListDecisionsRequest.newBuilder().setUserId("shopper-1").build());
    assertEquals(1, decisions.size());
    assertEquals(
        banner.trackingId(), decisions.get(0).getServedTreatments(0).getTreatmentTrackingId());
  }

  @Test
  void everyTestStartsFromTheSeed() {
    banners.bannerFor("shopper-0").orElseThrow();
    auxia.admin().reset();

    assertEquals(List.of(), auxia.admin().listInteractions());
    assertEquals(List.of(), auxia.admin().listDecisions());
  }

  @Test
  void aDismissedBannerStaysAwayFor30Days() {
    Banner banner = banners.bannerFor("shopper-2").orElseThrow();
    banners.dismiss("shopper-2", banner);

    assertTrue(banners.bannerFor("shopper-2").isEmpty());
    assertEquals(
        List.of(InteractionType.VIEWED, InteractionType.DISMISSED),
        interactionsOf("shopper-2").stream()
            .map(logged -> logged.getInteraction().getInteractionType())
            .collect(Collectors.toList()));
    auxia.admin().advanceClock(Duration.ofDays(31));
    assertTrue(banners.bannerFor("shopper-2").isPresent());
  }

  @Test
  void thePageHasNoBannerWhileAuxiaIsDown() {
    EmulatorAdmin admin = auxia.admin();
    // Every GetTreatments fails, retries included, until the fault is cleared.
    admin.createFault(
        Fault.newBuilder()
            .setMethod("GetTreatments")
            .setFraction(1.0)
            .setCode(Code.UNAVAILABLE)
            .build());

    assertTrue(banners.bannerFor("shopper-3").isEmpty());
    assertEquals(1, admin.clearFaults());
    assertTrue(banners.bannerFor("shopper-3").isPresent());
  }

  @Test
  void aProjectWithoutTreatmentsShowsNoBanner() {
    try (AuxiaEmulator shop = AuxiaEmulator.builder().seed(closedShop()).start()) {
      assertEquals("SHOP", shop.projectId());
      CartBanners closed = new CartBanners(shop.client(), shop.projectId());
      assertTrue(closed.bannerFor("shopper-4").isEmpty());
    }
  }

  private static TreatmentContentFieldTypePb textField(String name) {
    return TreatmentContentFieldTypePb.newBuilder()
        .setFieldName(name)
        .setValueLengthLimit(100)
        .setDataType(ContentFieldDataType.STRING)
        .build();
  }

  /** A project whose cart page has no treatment yet. */
  private static Seed closedShop() {
    return Seed.newBuilder()
        .addProjects(
            Project.newBuilder()
                .setProjectId("SHOP")
                .setNumericProjectId(7)
                .addApiKeys("SHOP_KEY")
                .addSupportedLanguageCodes("en")
                .addTreatmentTypes(
                    TreatmentTypePb.newBuilder()
                        .setName("BANNER")
                        .setDeliveryType(DeliveryType.IN_APP)
                        .addLanguageSpecificContentFieldTypes(textField("title"))
                        .addLanguageAgnosticContentFieldTypes(textField("link"))
                        .addSurfaces(SurfacePb.newBuilder().setName(CartBanners.SURFACE))))
        .build();
  }
}
