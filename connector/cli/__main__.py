"""``python -m teams_proactive.connector.cli``: the same command line as the ``teams-proactive`` script."""

from teams_proactive.connector.cli import main

raise SystemExit(main())
