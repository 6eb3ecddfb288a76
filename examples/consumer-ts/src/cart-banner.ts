// The banner of a shop's cart page, chosen by Auxia: a service that calls the API.

import {
  ApiError,
  LogTreatmentInteractionRequest_InteractionType as Interaction,
  type AuxiaClient,
} from "@auxia/decision-api";

/** A treatment shown on the cart page. */
export interface Banner {
  readonly treatmentId: string;
  readonly trackingId: string;
  readonly content: string;
}

/** Asks Auxia for the cart page's banner and tells it what the user did with it. */
export class CartBanners {
  constructor(
    private readonly client: AuxiaClient,
    private readonly projectId: string,
  ) {}

  /** The banner to show a user, logged as VIEWED; undefined if Auxia has none or fails. */
  async bannerFor(userId: string): Promise<Banner | undefined> {
    let chosen;
    try {
      const answer = await this.client.getTreatments({
        projectId: this.projectId,
        userId,
        surfaces: [{ surface: "CART_SCREEN" }],
      });
      chosen = answer.userTreatments[0];
    } catch (error) {
      if (error instanceof ApiError) {
        return undefined; // the page works without a banner
      }
      throw error;
    }
    if (chosen === undefined) {
      return undefined;
    }
    const banner = {
      treatmentId: chosen.treatmentId,
      trackingId: chosen.treatmentTrackingId,
      content: chosen.treatmentContent,
    };
    await this.log(userId, banner, Interaction.VIEWED);
    return banner;
  }

  /** Tell Auxia the user closed the banner. */
  async dismiss(userId: string, banner: Banner): Promise<void> {
    await this.log(userId, banner, Interaction.DISMISSED);
  }

  private async log(userId: string, banner: Banner, interactionType: Interaction): Promise<void> {
    await this.client.logTreatmentInteraction({
      projectId: this.projectId,
      userId,
      treatmentId: banner.treatmentId,
      treatmentTrackingId: banner.trackingId,
      interactionType,
      interactionTimeMicros: BigInt(Date.now()) * 1000n,
      surface: "CART_SCREEN",
    });
  }
}
