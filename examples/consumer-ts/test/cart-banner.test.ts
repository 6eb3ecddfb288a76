// The cart banner against the local Auxia server: one emulator for the file, reset before each test.

import assert from "node:assert/strict";
import { after, before, beforeEach, test } from "node:test";

import {
  ContentFieldDataType,
  DeliveryType,
  LogTreatmentInteractionRequest_InteractionType as Interaction,
} from "@auxia/decision-api";
import { Code } from "@auxia/decision-api/rpc";
import { startEmulator, type Emulator } from "@auxia/decision-api/testing";

import { CartBanners } from "../src/cart-banner.js";

let auxia: Emulator;
let banners: CartBanners;

before(async () => {
  auxia = await startEmulator(); // auxia-decision on PATH; free ports; stops with this process
  banners = new CartBanners(auxia.client(), auxia.projectId);
});
after(() => auxia.stop());
beforeEach(() => auxia.admin.reset());

test("the banner shown is logged as viewed", async () => {
  const banner = await banners.bannerFor("shopper-1");

  assert.equal(banner?.treatmentId, "CART_REMINDER");
  const { interactions } = await auxia.admin.listInteractions({ userId: "shopper-1" });
  assert.deepEqual(
    interactions.map(({ interaction }) => [interaction?.interactionType, interaction?.treatmentTrackingId]),
    [[Interaction.VIEWED, banner.trackingId]],
  );
  const { decisions } = await auxia.admin.listDecisions({ userId: "shopper-1" });
  assert.equal(decisions[0]?.servedTreatments[0]?.treatmentTrackingId, banner.trackingId);
});

test("every test starts from the seed", async () => {
  // The previous test's interactions and decisions are gone.
  assert.deepEqual((await auxia.admin.listInteractions()).interactions, []);
  assert.deepEqual((await auxia.admin.listDecisions()).decisions, []);
});

test("a dismissed banner stays away for 30 days", async () => {
  const banner = await banners.bannerFor("shopper-2");
  assert.ok(banner);
  await banners.dismiss("shopper-2", banner);

  assert.equal(await banners.bannerFor("shopper-2"), undefined);
  const { interactions } = await auxia.admin.listInteractions({ userId: "shopper-2" });
  assert.deepEqual(
    interactions.map(({ interaction }) => interaction?.interactionType),
    [Interaction.VIEWED, Interaction.DISMISSED],
  );
  await auxia.admin.setClock({ change: { case: "advance", value: { seconds: 31n * 86_400n } } });
  assert.notEqual(await banners.bannerFor("shopper-2"), undefined);
});

test("the page has no banner while Auxia is down", async () => {
  // Every GetTreatments fails, retries included, until the fault is cleared.
  await auxia.admin.createFault({
    fault: { method: "GetTreatments", selection: { case: "fraction", value: 1 }, code: Code.UNAVAILABLE },
  });

  assert.equal(await banners.bannerFor("shopper-3"), undefined);
  await auxia.admin.clearFaults();
  assert.notEqual(await banners.bannerFor("shopper-3"), undefined);
});

test("a project without treatments shows no banner", async () => {
  const textField = (fieldName: string) => ({
    fieldName,
    valueLengthLimit: 100,
    dataType: ContentFieldDataType.STRING,
  });
  const closedShop = await startEmulator({
    seed: {
      projects: [
        {
          projectId: "SHOP",
          numericProjectId: 7n,
          apiKeys: ["SHOP_KEY"],
          supportedLanguageCodes: ["en"],
          treatmentTypes: [
            {
              name: "BANNER",
              deliveryType: DeliveryType.IN_APP,
              languageSpecificContentFieldTypes: [textField("title")],
              languageAgnosticContentFieldTypes: [textField("link")],
              surfaces: [{ name: "CART_SCREEN" }],
            },
          ],
        },
      ],
    },
  });
  try {
    const shop = new CartBanners(closedShop.client(), closedShop.projectId);
    assert.equal(await shop.bannerFor("shopper-4"), undefined);
  } finally {
    await closedShop.stop();
  }
});
