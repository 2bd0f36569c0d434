"""``python -m services.core.migrations upgrade --database-url URL`` (see cli.py)."""

from services.core.migrations.cli import main

raise SystemExit(main())
