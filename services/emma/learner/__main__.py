"""Runs the learner: `python -m emma.learner`."""

from emma.learner.server import main

raise SystemExit(main())
