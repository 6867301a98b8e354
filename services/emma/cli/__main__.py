"""`python -m emma.cli` runs the `emma` command."""

from emma.cli.main import main

raise SystemExit(main())
