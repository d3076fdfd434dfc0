"""The saga console: a static page (HTML, one script, one stylesheet) over the operator API.

Served at /console/ by the users API and routed there by the gateway. The page holds no secret
and needs none: it logs in with POST /v1/auth/login and calls the operator endpoints with the
access token, which the API checks (401 without one, 403 without the operator role).
"""

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

STATIC = Path(__file__).parent / "static"
# Only the page's own files: no inline script or style, no other origin, not framed.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class ConsoleFiles(StaticFiles):
    """The console's files with its Content-Security-Policy, revalidated on every load (ETag)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["Cache-Control"] = "no-cache"
        return response


def mount_console(app: FastAPI) -> None:
    @app.get("/console", include_in_schema=False)
    def console_redirect() -> RedirectResponse:
        # Relative, so it holds behind the gateway whatever its scheme and host.
        return RedirectResponse("/console/", status_code=308)

    app.mount("/console/", ConsoleFiles(directory=STATIC, html=True), name="console")
