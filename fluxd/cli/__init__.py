"""The ``fluxd`` command line: ``run`` (the daemon), ``build`` and ``diff``."""

from fluxd.cli.main import main

__all__ = ["main"]
