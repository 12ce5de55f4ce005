"""Dependencies, as ``Annotated`` aliases so a handler's signature reads as its contract."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Request

from app.errors import Unauthorized
from app.ratelimit import ANONYMOUS, Caller
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


def identify(settings: Settings, presented: str | None) -> str:
    """The name of the key presented (``anonymous`` when the service has no keys)."""
    if not settings.api_keys:
        return ANONYMOUS
    match = None
    for key, name in settings.named_keys().items():  # compare with every key: no early exit to time
        if presented is not None and hmac.compare_digest(presented.encode(), key.encode()):
            match = name
    if match is None:
        raise Unauthorized(
            "send a valid API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return match


def caller(
    request: Request,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header(description="Bearer <API key>")] = None,
    x_api_key: Annotated[str | None, Header(description="the API key, as an alternative to Authorization")] = None,
) -> Caller:
    """Who is calling, after the key check and the key's request-rate limit."""
    presented = x_api_key
    if authorization and authorization.lower().startswith("bearer "):
        presented = authorization[7:].strip()
    name = identify(settings, presented)
    who = Caller(name, settings.limits_for(name))
    state: GatewayState = request.app.state.gateway
    request.state.ratelimit = state.limiter.hit(who)
    return who


CallerDep = Annotated[Caller, Depends(caller)]
ApiKeyDep = Depends(caller)
