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
    submit,
)
from imgenhance.cards import ModelCard
from imgenhance.catalog import Catalog, UnknownModel
from imgenhance.params import IMAGE, MAX_OUTSCALE, SuperResolveParams, model_scale_for

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], dependencies=[ApiKeyDep, FormFieldsDep])


@router.post("/super-resolve", summary="Upscale an image x2 or x4, or by any factor up to 8 (outscale)", **SUBMIT_ROUTE)
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
            "sharpest on clean images, fast), quality (x4, RRDBNet: +0.2 dB on Set14, ~30x slower), real-world "
            "(Real-ESRGAN x4plus: blur, noise and JPEG) or anime (default: the general model)"
        ),
    ] = None,
    outscale: Annotated[
        float | None,
        Form(
            gt=1,
            le=MAX_OUTSCALE,
            description="any final factor above 1 up to 8 (e.g. 3.5): the nearest model scale runs, then the "
            "result is resampled (Lanczos) to round(width*outscale) x round(height*outscale); instead of scale",
        ),
    ] = None,
    output_format: FormatField = None,
    quality: QualityField = None,
    prefer: PreferHeader = None,
) -> Response:
    if scale not in (None, 2, 4):
        raise InvalidParameter(f"scale must be 2 or 4, not {scale}")
    upload = await read_upload(image, settings)
    card = pick_model(state.catalog, model, scale, outscale)
    factor = outscale or card.scale
    fmt = choose_format(upload.info, factor, settings, output_format, quality, f"x{factor:g}")
    params = SuperResolveParams(model=card.id, scale=card.scale, outscale=outscale, output_format=fmt, quality=quality)
    return await submit(state, "super-resolve", params, {IMAGE: upload}, prefer, caller, options)


def pick_model(catalog: Catalog, model: str | None, scale: int | None, outscale: float | None) -> ModelCard:
    """The card a request runs: a named model at its own scale; else (a variant, or the
    default) the model for ``scale`` (default 4), or with ``outscale`` for the scale
    ``model_scale_for`` picks among those installed. The command line's local mode runs
    this too, so both choose alike."""
    if outscale is not None and scale is not None:
        raise InvalidParameter("send scale or outscale, not both", field="outscale")
    names_a_model = model is not None and catalog.get(model) is not None
    if outscale is not None and not names_a_model:
        scales = [c.scale for c in catalog if c.task == "super-resolve" and model in (None, c.variant)]
        if scales:
            scale = model_scale_for(outscale, scales)
    try:
        return catalog.resolve("super-resolve", model, scale if scale or names_a_model else 4)
    except UnknownModel as exc:
        raise InvalidParameter(str(exc)) from exc
