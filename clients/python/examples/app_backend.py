"""An app backend (asyncio): one decision per signed-in customer opening the app, in parallel.

Each call has its own deadline; a degraded answer is still used, but with care (no push
when the profile, and so consent, was not read), and a failed call falls back to the
app's own content. Run it against `emma up --demo`:

    python app_backend.py app-anna app-ben app-nobody
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from emma_client import AsyncEmmaClient, Decision, EmmaError

# What the app's home screen waits for Emma; the screen renders without an offer after it.
SCREEN_DEADLINE_S = 0.3
APP_CHANNELS = ("in_app", "push")


def what_to_show(decision: Decision) -> str:
    """The app's choice for one answer: show it, show it only in the app, or show nothing."""
    if decision.fallback:
        return "house-content"  # Emma chose nothing in time: the app's own banner
    if "profile" in decision.degraded and decision.channel == "push":
        # Without the profile Emma could not check consent, and it never picks a
        # consent-bound channel then; a backend double-checks before it pushes.
        return "in-app-only"
    return "show"


async def open_app(emma: AsyncEmmaClient, app_user: str) -> str:
    try:
        decision = await emma.decide(
            app_user_id=app_user,
            touchpoint="app",
            allowed_channels=APP_CHANNELS,
            deferred_activation=True,  # the customer may close the app before the offer shows
            device="ios",
        )
    except EmmaError as error:
        return f"{app_user}: house-content (Decide {error.code.name})"
    action = what_to_show(decision)
    degraded = ",".join(decision.degraded) or "-"
    line = f"{app_user}: {action} {decision.offer_id} on {decision.channel} degraded={degraded}"
    if action != "house-content":
        try:
            # The offer scrolled into view; later the app reports a tap as a reward.
            await emma.activate(decision.event_id)
            await emma.reward(decision.event_id, 1.0, kind="click")
        except EmmaError as error:
            line += f" (feedback later: {error.method} {error.code.name})"
    return line


async def main(args: argparse.Namespace) -> int:
    # Calls in parallel over several connections: a decision service running several
    # worker processes on its port gives each connection to one of them.
    async with AsyncEmmaClient(args.decision_addr, deadline=args.deadline, connections=4) as emma:
        for line in await asyncio.gather(*(open_app(emma, user) for user in args.app_users)):
            print(line)
    return 0


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("app_users", nargs="+", help="app user ids, e.g. app-anna")
    parser.add_argument("--deadline", type=float, default=SCREEN_DEADLINE_S, help="seconds")
    parser.add_argument(
        "--decision-addr", default=os.environ.get("EMMA_DECISION_ADDR", "127.0.0.1:50051")
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse(sys.argv[1:]))))
