"""Runs the profile service: `python -m emma.profile`."""

from emma.profile.server import main

raise SystemExit(main())
