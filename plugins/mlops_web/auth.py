"""Every route of the plugin needs an Airflow login: Airflow does not protect a plugin's FastAPI app.

The same credentials as Airflow's UI and REST API: the ``_token`` cookie that the login page sets
(a browser sends it to every page of the server), or an ``Authorization: Bearer`` header with a
token from ``POST /auth/token`` (scripts, Prometheus). Validated by Airflow's auth manager.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response


async def require_login(request: Request) -> Any:
    """The logged-in user; 401 without a token, 403 with one Airflow does not accept."""
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
    from airflow.api_fastapi.core_api.security import resolve_user_from_token

    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    token = credentials if scheme.lower() == "bearer" else request.cookies.get(COOKIE_NAME_JWT_TOKEN)
    return await resolve_user_from_token(token)


async def refused(request: Request, exc: HTTPException) -> Response:
    """A page opened in a browser without a login goes to the login page (and back); anything else
    gets the status and a JSON body, as Airflow's REST API answers."""
    if exc.status_code in (401, 403) and request.method == "GET" and "text/html" in request.headers.get("accept", ""):
        from airflow.api_fastapi.app import get_auth_manager

        return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)), status_code=303)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
