"""The signed-in web pages (placeholder until the pages land)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)


async def error_page(request: Request, status: int, detail: str) -> HTMLResponse:
    return HTMLResponse(f"<!doctype html><title>Error</title><p>{status}: {detail}</p>", status_code=status)
