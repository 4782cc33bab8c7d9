"""`python -m riskd` is the `riskd` command."""

from riskd.cli import main

raise SystemExit(main())
