"""Dependencies every service's API declares alike: the client's address and the Celery producer.

Dependencies that only read ``app.state`` are ``async def``: FastAPI runs them on the event loop,
where a sync one would take a thread from the pool the endpoints (and their hashes) need.
"""

from typing import Annotated

from celery import Celery
from fastapi import Depends, Request


async def client_address(request: Request) -> str:
    # Behind the gateway uvicorn sets this from X-Forwarded-For (--proxy-headers, trusted
    # proxies from FORWARDED_ALLOW_IPS), so it is the caller's address, not nginx's.
    return request.client.host if request.client else "unknown"


ClientAddress = Annotated[str, Depends(client_address)]


async def get_celery(request: Request) -> Celery:
    """The producer the API publishes with, built in its lifespan from the settings ``create_app`` was given."""
    celery: Celery = request.app.state.celery
    return celery


CeleryDep = Annotated[Celery, Depends(get_celery)]
