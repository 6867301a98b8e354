"""Runs the decision service: `python -m emma.decision`."""

from emma.decision.server import main

raise SystemExit(main())
