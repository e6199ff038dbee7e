"""The status UI, served from the daemon: the informer caches as a web page.

- :mod:`~fluxd.ui.model`: rows, object pages and the dependency graph, from object dicts;
- :mod:`~fluxd.ui.events`: the last Events of each object, kept as fluxd records them;
- :mod:`~fluxd.ui.hub`: row changes fanned out to the live streams;
- :mod:`~fluxd.ui.access`: bearer tokens and actions checked by the cluster's own RBAC;
- :mod:`~fluxd.ui.server`: the aiohttp application (static files, JSON API, stream,
  actions); the page itself is in ``static/``, plain files with no build step.

Overview, object pages, graph and stream read only what the daemon already holds: a
page view makes no API request. Only the live health of an inventory and the actions
talk to the API server.
"""

from fluxd.ui.events import RecentEvents
from fluxd.ui.hub import UiHub
from fluxd.ui.server import ui_app

__all__ = ["RecentEvents", "UiHub", "ui_app"]
