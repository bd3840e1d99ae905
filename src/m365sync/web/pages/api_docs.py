"""The JSON API's documentation at ``/api/docs``: Swagger UI, served from the package
``swagger-ui-bundle-v2`` (a maintained bundle of Swagger UI's release files) under
``/api/docs/assets``, with the product's own start script. Nothing comes from a CDN, so the
page works offline and under the product's Content-Security-Policy (scripts and styles from
this server only, no inline script). The schema itself is ``/api/openapi.json``."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from m365sync.web.pages.rendering import templates

__all__ = ["DOCS_PATH", "install_api_docs"]

DOCS_PATH = "/api/docs"
ASSETS_PATH = "/api/docs/assets"

router = APIRouter()


@router.get(DOCS_PATH, include_in_schema=False, response_class=HTMLResponse)
def api_docs(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "api_docs.html",
        {"title": "API documentation", "openapi_url": request.app.openapi_url},
    )


def install_api_docs(app: FastAPI) -> None:
    app.mount(ASSETS_PATH, StaticFiles(directory=str(swagger_ui_path)), name="api_docs_assets")
    app.include_router(router)
