"""`python -m serialink` is the `serialink` command."""

from serialink.cli import main

raise SystemExit(main())
