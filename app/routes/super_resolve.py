"""POST /v1/jobs/super-resolve."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Response

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
    choose_format,
    read_upload,
    resolve,
    submit,
)
from imgenhance.params import IMAGE, SuperResolveParams

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], dependencies=[ApiKeyDep, FormFieldsDep])


@router.post("/super-resolve", summary="Upscale an image x2 or x4", **SUBMIT_ROUTE)
async def super_resolve(
    state: StateDep,
    caller: CallerDep,
    options: SubmitOptionsDep,
    settings: SettingsDep,
    image: ImageField,
    scale: Annotated[
        int | None,
        Form(description="2 or 4 (default 4, or the named model's scale)", json_schema_extra={"enum": [2, 4]}),
    ] = None,
    model: Annotated[
        str | None,
        Form(
            description="a super-resolve model id from /v1/models, or a variant: general (bicubic-trained, "
            "sharpest on clean images), real-world (Real-ESRGAN x4plus: blur, noise and JPEG) or anime "
            "(default: the general model)"
        ),
    ] = None,
    output_format: FormatField = None,
    quality: QualityField = None,
    prefer: PreferHeader = None,
) -> Response:
    if scale not in (None, 2, 4):
        raise InvalidParameter(f"scale must be 2 or 4, not {scale}")
    upload = await read_upload(image, settings)
    names_a_model = model is not None and state.catalog.get(model) is not None
    card = resolve(state, "super-resolve", model, scale if scale or names_a_model else 4)
    fmt = choose_format(upload.info, card.scale, settings, output_format, quality, f"x{card.scale}")
    params = SuperResolveParams(model=card.id, scale=card.scale, output_format=fmt, quality=quality)
    return await submit(state, "super-resolve", params, {IMAGE: upload}, prefer, caller, options)
