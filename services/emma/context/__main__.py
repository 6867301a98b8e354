"""Runs the context service: `python -m emma.context`."""

from emma.context.server import main

raise SystemExit(main())
