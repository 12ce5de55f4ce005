"""POST /v1/jobs/denoise."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Response

from app.deps import ApiKeyDep, CallerDep, SettingsDep, StateDep
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
from imgenhance.params import IMAGE, MAX_SIGMA, DenoiseParams

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], dependencies=[ApiKeyDep, FormFieldsDep])


@router.post("/denoise", summary="Remove noise and compression artefacts", **SUBMIT_ROUTE)
async def denoise(
    state: StateDep,
    caller: CallerDep,
    options: SubmitOptionsDep,
    settings: SettingsDep,
    image: ImageField,
    strength: Annotated[
        float,
        Form(ge=0, le=1, description="0..1: share of the correction applied; 0 leaves the image as it is (default: 1)"),
    ] = 1.0,
    sigma: Annotated[
        float | None,
        Form(
            ge=0,
            le=MAX_SIGMA,
            description="the noise level the model assumes, 0-255 scale; above the real noise it smooths more "
            "(default: blind: the model estimates it)",
        ),
    ] = None,
    model: Annotated[str | None, Form(description="a denoise model id from /v1/models (default: the default)")] = None,
    output_format: FormatField = None,
    quality: QualityField = None,
    prefer: PreferHeader = None,
) -> Response:
    upload = await read_upload(image, settings)
    card = resolve(state, "denoise", model)
    fmt = choose_format(upload.info, 1, settings, output_format, quality, "denoising")
    params = DenoiseParams(model=card.id, sigma=sigma, strength=strength, output_format=fmt, quality=quality)
    return await submit(state, "denoise", params, {IMAGE: upload}, prefer, caller, options)
