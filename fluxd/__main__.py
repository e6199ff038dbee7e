"""``python -m fluxd``: the same entry point as the ``fluxd`` console script."""

from fluxd.cli import main

raise SystemExit(main())
