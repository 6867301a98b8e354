// A till at checkout: asks Emma for an offer for the scanned loyalty card and the basket,
// shows it to the cashier, activates it once the receipt prints, and reports a redemption.
//   node examples/till.js [decision-address] [loyalty-card]
import { EmmaClient } from "../src/client.js";

const [address = "127.0.0.1:50051", card = "1001"] = process.argv.slice(2);
const emma = new EmmaClient(address, { deadlineMs: 300 });
try {
  const decision = await emma.decide(
    { loyaltyCard: card },
    {
      touchpoint: "pos",
      storeId: "berlin-mitte",
      basket: [{ productId: "emmentaler", category: "cheese", quantity: 1, amount: 3.49 }],
      allowedChannels: ["cashier_prompt", "receipt"],
      // The till shows the offer only if the receipt prints: activate it then.
      deferredActivation: true,
      budgetMs: 50,
    },
  );
  console.log(`offer ${decision.offer?.offerId} on ${decision.channel} (event ${decision.eventId})`);
  if (decision.degraded.length) console.log(`degraded: ${decision.degraded.join(", ")}`);
  if (!decision.fallback) {
    await emma.activate(decision.eventId);
    await emma.reward(decision.eventId, 1.0, { kind: "redeemed" });
    console.log("activated and redeemed");
  }
} finally {
  emma.close();
}
