"""/v1/models: the model cards this deployment serves."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.deps import ApiKeyDep, CatalogDep
from app.errors import NotFound
from app.schemas import style_links
from app.submit import PROBLEM, V1_RESPONSES
from imgenhance.cards import ModelCard

router = APIRouter(prefix="/v1/models", tags=["models"], dependencies=[ApiKeyDep], responses=V1_RESPONSES)


@router.get("", summary="All model cards: task, scale, I/O contract, training, measured quality")
async def list_models(catalog: CatalogDep) -> dict[str, Any]:
    return {"models": [_described(card) for card in catalog]}


@router.get("/{model_id}", summary="One model card", responses={404: {"description": "No such model", **PROBLEM}})
async def get_model(model_id: str, catalog: CatalogDep) -> dict[str, Any]:
    card = catalog.get(model_id)
    if card is None:
        raise NotFound(f"no model {model_id!r}; GET /v1/models lists them")
    return _described(card)


def _described(card: ModelCard) -> dict[str, Any]:
    """The card, with links to what the API serves about it (a style's preview images)."""
    return {**card.model_dump(mode="json"), "links": {"self": f"/v1/models/{card.id}", **style_links(card)}}
