"""POST /v1/jobs/style-transfer: a named style, or any uploaded style image."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile

from app.deps import ApiKeyDep, CallerDep, SettingsDep, StateDep
from app.errors import InvalidParameter
from app.submit import (
    SUBMIT_ROUTE,
    FormatField,
    FormFieldsDep,
    ImageField,
    PreferHeader,
    QualityField,
    SubmitOptionsDep,
    Upload,
    choose_format,
    read_upload,
    submit,
)
from imgenhance.catalog import UnknownModel
from imgenhance.params import (
    IMAGE,
    STYLE_IMAGE,
    STYLE_MAX_SIDE,
    StyleTransferParams,
    style_source_conflict,
    stylised_scale,
)

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], dependencies=[ApiKeyDep, FormFieldsDep])


@router.post(
    "/style-transfer", summary="Repaint an image in a named style or in the style of any image", **SUBMIT_ROUTE
)
async def style_transfer(
    state: StateDep,
    caller: CallerDep,
    options: SubmitOptionsDep,
    settings: SettingsDep,
    image: ImageField,
    style: Annotated[str | None, Form(description="a named style from /v1/styles (or send style_image)")] = None,
    style_image: Annotated[
        UploadFile | None, File(description="any picture whose style to copy (or name a style)")
    ] = None,
    strength: Annotated[
        float,
        Form(ge=0, le=1, description="0..1: 0 keeps the image, 1 is the full style (default: 1)"),
    ] = 1.0,
    preserve_color: Annotated[
        bool, Form(description="keep the image's own colours, transfer brush work only (default: false)")
    ] = False,
    max_side: Annotated[
        int,
        Form(
            ge=64,
            le=STYLE_MAX_SIDE,
            description="the longer side the image is stylised at: smaller gives broader strokes (default: 1024)",
        ),
    ] = 1024,
    keep_size: Annotated[bool, Form(description="scale the result back to the input's size (default: true)")] = True,
    style_side: Annotated[
        int,
        Form(
            ge=64,
            le=STYLE_MAX_SIDE,
            description="with style_image: the longer side it is read at; larger copies finer detail (default: 512)",
        ),
    ] = 512,
    output_format: FormatField = None,
    quality: QualityField = None,
    prefer: PreferHeader = None,
) -> Response:
    conflict = style_source_conflict(style is not None, style_image is not None)
    if conflict:
        if style is None:  # neither: say which names there are
            names = ", ".join(c.style.name for c in state.catalog.styles() if c.style)
            conflict += f"; the named styles: {names or 'none installed'}"
        raise InvalidParameter(conflict, field="style")
    try:
        card = state.catalog.style(style) if style is not None else state.catalog.arbitrary_style()
    except UnknownModel as exc:
        raise InvalidParameter(str(exc), field="style") from exc
    upload = await read_upload(image, settings)
    uploads: dict[str, Upload] = {IMAGE: upload}
    if style_image is not None:
        uploads[STYLE_IMAGE] = await read_upload(style_image, settings, STYLE_IMAGE)
    info = upload.info
    scale = stylised_scale(info.width, info.height, max_side, keep_size)
    fmt = choose_format(info, scale, settings, output_format, quality, "stylising")
    params = StyleTransferParams(
        model=card.id,
        style=style,
        strength=strength,
        preserve_color=preserve_color,
        max_side=max_side,
        keep_size=keep_size,
        style_side=style_side,
        output_format=fmt,
        quality=quality,
    )
    return await submit(state, "style-transfer", params, uploads, prefer, caller, options)
