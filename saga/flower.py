"""The Celery app Flower watches: ``celery -A saga.flower flower`` (reads BROKER_URL when it starts).

It knows the three queues, so Flower's broker page lists them; it imports no service.
Flower runs under ``--url_prefix=flower`` (the gateway's /flower/); its own port's root, where a
person opens it first (http://localhost:5555/), redirects there instead of answering 404.
"""

import os

import tornado.web
from flower.urls import settings as flower_settings  # type: ignore[import-untyped]  # no type information

from ._app import create_celery_app

app = create_celery_app("flower", lambda: os.environ["BROKER_URL"])  # read when Flower starts


class _RootToPrefix(tornado.web.RequestHandler):
    """Any path no Flower page matches: ``/`` goes to Flower's pages, the rest is Flower's 404."""

    def get(self) -> None:
        prefix = str(self.settings.get("static_url_prefix", "/static/")).removesuffix("static/")
        if self.request.path == "/" and prefix != "/":
            self.redirect(prefix)
            return
        raise tornado.web.HTTPError(404)

    head = get


# Tornado's handler for unmatched paths, in the settings Flower builds its application with.
flower_settings["default_handler_class"] = _RootToPrefix
