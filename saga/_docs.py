"""Every service's API docs at one address: the gateway's ``/docs/``, one Swagger UI over the three
OpenAPI documents (``/docs/<service>/openapi.json``), its assets from the swagger-ui-bundle-v2
package, never a CDN. The users API serves the page and the assets; the gateway routes them
(nginx/docs.conf, on when GATEWAY_DOCS=on)."""

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]  # no type information

# Relative to the page at /docs/ on the gateway: the gateway serves each service's document there.
_SERVICES = ("users", "profile", "emails")

_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>API docs: users, profile, emails</title>
  <link rel="stylesheet" href="assets/swagger-ui.css">
  <link rel="icon" type="image/png" href="assets/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="assets/swagger-ui-bundle.js"></script>
  <script src="assets/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      urls: [URLS],
      "urls.primaryName": "users",
      dom_id: "#swagger-ui",
      deepLinking: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout"
    });
  </script>
</body>
</html>
""".replace("[URLS]", "[" + ", ".join(f'{{"url": "{s}/openapi.json", "name": "{s}"}}' for s in _SERVICES) + "]")


def add_gateway_docs(app: FastAPI) -> None:
    """``GET /docs/services`` (the gateway's ``/docs/``) and ``/docs/assets/...``; not in the OpenAPI document."""
    app.mount("/docs/assets", StaticFiles(directory=swagger_ui_path), name="swagger-ui-assets")

    @app.get("/docs/services", include_in_schema=False)
    def docs_page() -> HTMLResponse:
        return HTMLResponse(_PAGE)
