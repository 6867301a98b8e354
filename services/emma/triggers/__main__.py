"""Runs the trigger engine: `python -m emma.triggers`."""

from emma.triggers.server import main

raise SystemExit(main())
