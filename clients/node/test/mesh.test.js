// Runs against a live mesh: EMMA_DECISION_ADDR names its decision service.
import assert from "node:assert/strict";
import { after, test } from "node:test";

import { EmmaClient, EmmaError, customerRef } from "../src/client.js";

const address = process.env.EMMA_DECISION_ADDR ?? "127.0.0.1:50051";
const card = process.env.EMMA_TEST_LOYALTY_CARD ?? "1001";
const emma = new EmmaClient(address, { deadlineMs: 5000 });
after(() => emma.close());

test("customerRef accepts both spellings and refuses unknown kinds", () => {
  assert.deepEqual(customerRef("loyalty_card:10:01"), { kind: "IDENTIFIER_KIND_LOYALTY_CARD", value: "10:01" });
  assert.deepEqual(customerRef({ appUserId: "a" }), { kind: "IDENTIFIER_KIND_APP_USER_ID", value: "a" });
  assert.throws(() => customerRef("passport:1"), /customer kind/);
  assert.throws(() => customerRef({}), /exactly one/);
});

test("a till gets an offer for a known customer, activates it and rewards it", async () => {
  const decision = await emma.decide(
    { loyaltyCard: card },
    {
      touchpoint: "pos",
      storeId: "berlin-mitte",
      basket: [{ productId: "emmentaler", category: "cheese", quantity: 1, amount: 3.49 }],
      allowedChannels: ["cashier_prompt", "receipt"],
      deferredActivation: true,
    },
  );
  assert.match(decision.eventId, /\S/);
  assert.ok(decision.offer.offerId.length > 0);
  assert.ok(["cashier_prompt", "receipt"].includes(decision.channel), decision.channel);
  assert.ok(decision.probability > 0 && decision.probability <= 1);
  assert.match(decision.traceId, /^[0-9a-f]{32}$/);
  assert.equal(await emma.activate(decision.eventId), true);
  assert.equal(await emma.activate(decision.eventId), false, "a second activation is a no-op");
  assert.equal(await emma.reward(decision.eventId, 1.0, { kind: "redeemed" }), true);
});

test("a reward for an unknown decision is not accepted", async () => {
  assert.equal(await emma.reward("no-such-event", 1.0), false);
});

test("bad input is INVALID_ARGUMENT naming the field", async () => {
  await assert.rejects(
    emma.decide({ loyaltyCard: card }, { location: { latitude: 123, longitude: 0 } }),
    (error) => error instanceof EmmaError && error.codeName === "INVALID_ARGUMENT" && /location/.test(error.details),
  );
});
