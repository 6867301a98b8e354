"""A till at checkout: asks Emma with the basket, redeems a wallet coupon, activates on print.

Run it against `emma up --demo` (Anna's loyalty card is 1001):

    python till.py --customer loyalty_card:1001 --store berlin-mitte \\
        emmentaler:cheese:1:4.99 brezel:bakery:2:1.40
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid

from emma_client import Decision, EmmaClient, EmmaError, ProfileClient

# The till waits for Emma at most this long; past it the checkout goes on without an offer.
CHECKOUT_DEADLINE_S = 0.5
TILL_CHANNELS = ("cashier_prompt", "receipt")


def ask_at_checkout(emma: EmmaClient, customer: str, store: str, basket: list[str]) -> Decision:
    # Deferred: the offer counts (caps, learning) only once the receipt really prints.
    return emma.decide(
        customer,
        touchpoint="pos",
        store_id=store,
        basket=basket,
        allowed_channels=TILL_CHANNELS,
        deferred_activation=True,
        device="till",
    )


def checkout(args: argparse.Namespace) -> int:
    receipt = args.receipt or uuid.uuid4().hex[:12]
    with (
        EmmaClient(args.decision_addr, deadline=args.deadline) as emma,
        ProfileClient(args.profile_addr, deadline=args.deadline) as profile,
    ):
        try:
            decision = ask_at_checkout(emma, args.customer, args.store, args.basket)
        except EmmaError as error:
            # Emma unreachable or too slow: the till never blocks a sale for an offer.
            print(f"no offer: {error.code.name}")
            return 0
        degraded = ",".join(decision.degraded) or "-"
        print(f"offer: {decision.offer_id} ({decision.title}) on {decision.channel}")
        print(f"degraded: {degraded}")
        for held in decision.open_offers:
            print(f"remind the cashier: {held.offer_id} ({held.title}) from {held.channel}")
        try:
            after_checkout(emma, profile, decision, args, receipt)
        except EmmaError as error:
            # The sale is done either way; a real till queues the call and sends it later.
            print(f"not sent, retry later: {error.method} {error.code.name}")
    return 0


def after_checkout(
    emma: EmmaClient,
    profile: ProfileClient,
    decision: Decision,
    args: argparse.Namespace,
    receipt: str,
) -> None:
    if decision.open_offers and args.redeem:
        coupon = decision.open_offers[0]
        # Receipt and offer make the redemption's id, so a retried checkout counts once.
        # Emma rewards the coupon's decision itself: no Reward call for it here.
        profile.redeem(
            args.customer, coupon, channel="cashier_prompt", event_id=f"{receipt}:{coupon.offer_id}"
        )
        print(f"redeemed: {coupon.offer_id}")
    # ... the sale completes and the receipt prints with the offer on it ...
    if not decision.fallback:
        emma.activate(decision.event_id)
        print(f"receipt printed: activated {decision.event_id}")
    profile.record_purchase(
        args.customer, args.basket, store_id=args.store, event_id=f"{receipt}:purchase"
    )
    print(f"purchase recorded: receipt {receipt}")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("basket", nargs="+", help="lines as product:category:quantity:amount")
    parser.add_argument("--customer", default="loyalty_card:1001", help="KIND:VALUE")
    parser.add_argument("--store", default="berlin-mitte")
    parser.add_argument("--deadline", type=float, default=CHECKOUT_DEADLINE_S, help="seconds")
    parser.add_argument("--receipt", default="", help="receipt number (default: a new one)")
    parser.add_argument(
        "--no-redeem", dest="redeem", action="store_false", help="only remind the cashier"
    )
    parser.add_argument(
        "--decision-addr", default=os.environ.get("EMMA_DECISION_ADDR", "127.0.0.1:50051")
    )
    parser.add_argument(
        "--profile-addr", default=os.environ.get("EMMA_PROFILE_ADDR", "127.0.0.1:50052")
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(checkout(parse(sys.argv[1:])))
