"""/v1/models: the model cards this deployment serves."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.deps import ApiKeyDep, CatalogDep
from app.errors import NotFound

router = APIRouter(prefix="/v1/models", tags=["models"], dependencies=[ApiKeyDep])


@router.get("", summary="All model cards: task, scale, I/O contract, training, measured quality")
async def list_models(catalog: CatalogDep) -> dict[str, Any]:
    return {"models": [card.model_dump(mode="json") for card in catalog]}


@router.get("/{model_id}", summary="One model card")
async def get_model(model_id: str, catalog: CatalogDep) -> dict[str, Any]:
    card = catalog.get(model_id)
    if card is None:
        raise NotFound(f"no model {model_id!r}; GET /v1/models lists them")
    return card.model_dump(mode="json")
