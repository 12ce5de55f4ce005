"""/v1/styles: the named styles, with a preview of each painting and an example."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import FileResponse

from app.deps import ApiKeyDep, CatalogDep
from app.errors import NotFound
from app.schemas import StyleList, StyleView, style_view
from app.submit import PROBLEM, V1_RESPONSES
from imgenhance.catalog import UnknownModel

router = APIRouter(prefix="/v1/styles", tags=["styles"], dependencies=[ApiKeyDep], responses=V1_RESPONSES)


@router.get("", response_model=StyleList, summary="Named styles, and whether any uploaded style is accepted")
async def list_styles(catalog: CatalogDep) -> StyleList:
    try:
        any_style: str | None = catalog.arbitrary_style().id
    except UnknownModel:
        any_style = None
    return StyleList(styles=[style_view(card) for card in catalog.styles()], any_style_model=any_style)


@router.get(
    "/{name}",
    response_model=StyleView,
    summary="One named style",
    responses={404: {"description": "Unknown style", **PROBLEM}},
)
async def get_style(name: str, catalog: CatalogDep) -> StyleView:
    try:
        return style_view(catalog.style(name))
    except UnknownModel as exc:
        raise NotFound(str(exc)) from exc


@router.get(
    "/{name}/{picture}",
    summary="The painting's thumbnail (preview) or a photograph in this style (example)",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "Unknown style", **PROBLEM}},
)
async def style_picture(name: str, picture: Literal["preview", "example"], catalog: CatalogDep) -> FileResponse:
    try:
        card = catalog.style(name)
    except UnknownModel as exc:
        raise NotFound(str(exc)) from exc
    assert card.style is not None  # catalog.style only returns cards with a style
    file = card.style.preview if picture == "preview" else card.style.example
    return FileResponse(
        catalog.root / file, media_type="image/jpeg", headers={"Cache-Control": "public, max-age=86400"}
    )
