"""The web app: the JSON API under `/api/v1` and the signed-in pages, on one set of services.

`create_app(settings)` builds it; `concordat serve` and `concordat up` run it with uvicorn. Every
command goes through `concordat.commands.Commands` (the store, then the workflow's Update and its
validator), exactly as the CLI's do; no route decides a rule.
"""

from __future__ import annotations

import dataclasses
import hmac
import secrets
from pathlib import Path
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from concordat import bootstrap
from concordat.commands import Commands
from concordat.settings import Settings
from concordat.web import openapi as openapi_doc
from concordat.web import refusals
from concordat.web.problems import EXPECTED, Problem, problem_for, problem_response
from concordat.web.throttle import SignInThrottle
from domain.values import field_path

log = structlog.get_logger("concordat.web")
HERE = Path(__file__).parent
SWAGGER_UI = "/static/swagger-ui-5.35.0"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
API_DOCS = f"""<!DOCTYPE html>
<html lang="en-GB">
<head>
  <meta charset="utf-8">
  <title>Concordat API</title>
  <link rel="stylesheet" href="{SWAGGER_UI}/swagger-ui.css">
</head>
<body>
  <main id="swagger-ui"></main>
  <script src="{SWAGGER_UI}/swagger-ui-bundle.js"></script>
  <script src="/static/api-docs.js"></script>
</body>
</html>
"""
SESSION_COOKIE = "concordat_session"
SESSION_HOURS = 8


def session_secret(settings: Settings) -> str:
    """The configured secret, or one kept in the data dir (made once, readable only by its owner)."""
    given = settings.session_secret.get_secret_value()
    if given:
        return given
    path = bootstrap.data_path(settings, "web-session-secret")
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48), encoding="utf-8")
    return path.read_text(encoding="utf-8").strip()


def create_app(settings: Settings | None = None, *, secure_cookies: bool = False) -> FastAPI:
    from concordat.web import api, pages, public  # the routers import this module's names

    settings = settings or Settings()
    commands = Commands.open(settings, door="api")
    app = FastAPI(
        title="Concordat",
        version="1",
        summary="Partnership governance cases: proposals, disputes, termination notices, variations and funding.",
        description=api.DESCRIPTION,
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # served below from vendored assets, without an inline script
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.commands = commands
    # The pages prove people by their session; their commands are signed for the `web` door.
    app.state.page_commands = dataclasses.replace(commands, door="web")
    app.state.views = {
        "case_list": bootstrap.open_case_list(settings),
        "decisions": bootstrap.open_decisions(settings),
        "public_health": bootstrap.open_public_health(settings),
        "outbox": bootstrap.open_outbox(settings),
    }
    app.state.throttle = SignInThrottle(commands.cases.recorder.datastore, trusted_header=settings.trusted_proxy_header)
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(settings),
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_HOURS * 3600,
        same_site="strict",
        https_only=secure_cookies,
    )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Any:
        detail = str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"nothing at {request.url.path}; the API's routes are listed at /api/v1/docs"
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}; see /api/v1/docs"
        if _wants_html(request):
            return await pages.error_page(request, exc.status_code, detail)
        return problem_response(exc.status_code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Any:
        errors = [
            {"field": field_path(tuple(p for p in e["loc"] if p != "body")), "message": e["msg"]} for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": "", "message": "invalid request"}
        detail = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
        return problem_response(422, detail, errors=errors)

    async def _expected(request: Request, exc: Exception) -> Any:
        status, detail = problem_for(exc)
        await refusals.record_error(request, exc)  # a refusal the tier gave goes on the record
        if _wants_html(request):
            return await pages.error_page(request, status, detail)
        return problem_response(status, detail)

    for known in EXPECTED:
        app.add_exception_handler(known, _expected)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Any:
        # Logged whole by the server; the person gets one line and no traceback. Starlette answers
        # this from its outermost middleware (ServerErrorMiddleware), outside `SecurityHeaders`
        # below: the headers are added here, or a 500 would go without them.
        log.error("web.internal_error", path=request.url.path, error=type(exc).__name__)
        status, detail = problem_for(exc)
        if _wants_html(request):
            answer: Response = await pages.error_page(request, status, detail)
        else:
            answer = problem_response(status, detail)
        for name, value in security_headers(request.url.path, hsts=secure_cookies).items():
            answer.headers.setdefault(name, value)
        return answer

    app.add_middleware(SecurityHeaders, hsts=secure_cookies)

    @app.get("/api/v1/docs", include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return HTMLResponse(API_DOCS)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> PlainTextResponse:
        """Alive, and the store answers."""
        commands.cases.max_notification_id()
        return PlainTextResponse("ok\n")

    app.include_router(api.router, prefix="/api/v1")
    app.include_router(public.api, prefix="/api/v1")
    _document_problems(app)
    app.include_router(pages.router)
    app.include_router(public.pages)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    _mount_metrics(app, settings)
    return app


def _document_problems(app: FastAPI) -> None:
    """Put the problem-details schema the routes' 4xx answers refer to into the OpenAPI document."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = Problem.model_json_schema()
            app.openapi_schema = openapi_doc.complete(schema, app.state.commands.cases.policy)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


class SecurityHeaders:
    """`security_headers` on every answer, as plain ASGI: it adds them to the answer's first message
    as it passes. (Starlette's `BaseHTTPMiddleware`, which `@app.middleware("http")` makes, runs each
    request in a task group of its own and streams the answer through a queue; on a request that does
    little else, such as a token check and a small read, that was a good part of the door's own time.)"""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wanted = security_headers(scope["path"], hsts=self.hsts)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in wanted.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def security_headers(path: str, *, hsts: bool) -> dict[str, str]:
    """What every answer carries: a policy that runs only this site's own scripts and styles (no inline
    script; GOV.UK Frontend's and Swagger UI's files are served from /static), may not be framed, is
    not sniffed into another type, and leaks no URL (case references) to other sites. Everything but
    the static files is `no-store`: pages and API answers hold case text for one signed-in person.
    HSTS only behind HTTPS (`--secure-cookies`)."""
    headers = {
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",  # for browsers without frame-ancestors
        "Referrer-Policy": "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    if not path.startswith("/static/"):
        headers["Cache-Control"] = "no-store"
    if hsts:
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    return headers


def _mount_metrics(app: FastAPI, settings: Settings) -> None:
    """The case metrics at /metrics only with CONCORDAT_METRICS_TOKEN, as a bearer token; without it
    the web app serves none (the projection runner does, on CONCORDAT_METRICS_ADDRESS)."""
    token = settings.metrics_token.get_secret_value()
    if not token:
        return
    from concordat import metrics  # the exporter only where it is served

    inner = metrics.asgi_app(settings)

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        given = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
        scheme, _, value = given.partition(" ")
        if scope["type"] == "http" and not (scheme.lower() == "bearer" and hmac.compare_digest(value, token)):
            detail = "the metrics need CONCORDAT_METRICS_TOKEN as a bearer token"
            await refusals.record(
                Request(scope), rule="AuthenticationError", reason=detail, command="metrics", door="api"
            )
            answer = problem_response(401, detail, headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
            await answer(scope, receive, send)
            return
        await inner(scope, receive, send)

    app.mount("/metrics", guarded)


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")
