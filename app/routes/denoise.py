"""POST /v1/jobs/denoise."""

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
from imgenhance.params import IMAGE, MAX_SIGMA, Artifacts, DenoiseParams, denoise_level_conflict

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
            description="how much noise to remove, as a Gaussian sigma on the 0-255 scale: below the image's own "
            "level the rest of the noise stays, 0 removes none (default: blind: the model estimates the level)",
        ),
    ] = None,
    artifacts: Annotated[
        Artifacts,
        Form(description="noise: sensor and Gaussian noise; jpeg: compression blocks and ringing (default: noise)"),
    ] = "noise",
    jpeg_quality: Annotated[
        int | None,
        Form(
            ge=1,
            le=100,
            description="artifacts=jpeg: the quality the image was saved at (default: read from a JPEG upload's "
            "quantisation tables; blind for other formats)",
        ),
    ] = None,
    model: Annotated[str | None, Form(description="a denoise model id from /v1/models (default: the default)")] = None,
    output_format: FormatField = None,
    quality: QualityField = None,
    prefer: PreferHeader = None,
) -> Response:
    conflict = denoise_level_conflict(sigma, artifacts, jpeg_quality)
    if conflict:
        raise InvalidParameter(conflict, field="jpeg_quality")
    upload = await read_upload(image, settings)
    card = resolve(state, "denoise", model)
    if jpeg_quality is not None and not (card.io.noise_level and card.io.noise_level.jpeg_levels):
        raise InvalidParameter(
            f"{card.id} has no JPEG levels in its card: leave out jpeg_quality", field="jpeg_quality"
        )
    fmt = choose_format(upload.info, 1, settings, output_format, quality, "denoising")
    params = DenoiseParams(
        model=card.id,
        sigma=sigma,
        strength=strength,
        artifacts=artifacts,
        jpeg_quality=jpeg_quality,
        output_format=fmt,
        quality=quality,
    )
    return await submit(state, "denoise", params, {IMAGE: upload}, prefer, caller, options)
