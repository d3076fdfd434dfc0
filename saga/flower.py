"""The Celery app Flower watches: ``celery -A saga.flower flower`` (reads BROKER_URL when it starts).

It knows the three queues, so Flower's broker page lists them; it imports no service.
"""

import os

from ._app import create_celery_app

app = create_celery_app("flower", lambda: os.environ["BROKER_URL"])  # read when Flower starts
