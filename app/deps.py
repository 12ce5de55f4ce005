"""Dependencies, as ``Annotated`` aliases so a handler's signature reads as its contract."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Request

from app.errors import Unauthorized
from app.state import GatewayState
from imgenhance.catalog import Catalog
from imgenhance.settings import Settings, get_settings

SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_state(request: Request) -> GatewayState:
    state: GatewayState = request.app.state.gateway
    return state


StateDep = Annotated[GatewayState, Depends(get_state)]


def get_catalog(state: StateDep) -> Catalog:
    return state.catalog


CatalogDep = Annotated[Catalog, Depends(get_catalog)]


def check_api_key(
    settings: SettingsDep,
    authorization: Annotated[str | None, Header(description="Bearer <API key>")] = None,
    x_api_key: Annotated[str | None, Header(description="the API key, as an alternative to Authorization")] = None,
) -> None:
    if not settings.api_keys:
        return
    presented = x_api_key
    if authorization and authorization.lower().startswith("bearer "):
        presented = authorization[7:].strip()
    if not presented or not any(hmac.compare_digest(presented, key) for key in settings.api_keys):
        raise Unauthorized(
            "send a valid API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


ApiKeyDep = Depends(check_api_key)
