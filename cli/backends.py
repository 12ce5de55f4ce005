"""Where ``imgenhance enhance`` and ``generate`` run a job: in this process (``LocalBackend``,
the default) or on a running service (``ServerBackend``, ``--server URL``).

Both give the same bytes for the same request. The local backend makes the choices the
gateway makes (``app.probe`` checks, the route's model choice, ``app.submit.choose_format``)
and then runs what a worker runs (``worker.pipelines`` through ``worker.runtime.Runtime``,
then ``worker.codec.encode``), only without Redis. The server backend is
``imgenhance.client.Client``.

A job that cannot be done raises ``Failed`` with a one-line reason, worded the same on
both backends: ``<status> <code>: <detail>``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from imgenhance.client import Client, ImgenhanceError, Result
from imgenhance.params import Artifacts, OutputFormat

if TYPE_CHECKING:
    from imgenhance.cards import ModelCard
    from imgenhance.catalog import Catalog
    from imgenhance.params import JobParams
    from imgenhance.settings import Settings
    from worker.codec import Picture
    from worker.runtime import LoadedModel

EnhanceTask = Literal["super-resolve", "denoise", "style-transfer"]


@dataclass(frozen=True)
class Enhance:
    """What to do to each image (None: the service's default)."""

    task: EnhanceTask = "super-resolve"
    model: str | None = None
    scale: int | None = None
    outscale: float | None = None
    sigma: float | None = None
    strength: float | None = None
    artifacts: Artifacts | None = None
    jpeg_quality: int | None = None
    style: str | None = None
    style_image: bytes | None = None
    preserve_color: bool | None = None
    max_side: int | None = None
    keep_size: bool | None = None
    style_side: int | None = None
    output_format: OutputFormat | None = None
    quality: int | None = None


@dataclass(frozen=True)
class Generate:
    model: str | None = None
    n: int = 16
    seed: int = 0
    label: str | int | None = None
    truncation: float = 1.0
    to_seed: int | None = None
    steps: int = 24
    output: Literal["grid", "zip"] = "grid"
    output_format: OutputFormat | None = None
    quality: int | None = None


@dataclass(frozen=True)
class Output:
    data: bytes
    content_type: str
    model: str


class Failed(Exception):
    """A job that could not be done; the message is one line for a person."""


class Backend(Protocol):
    name: str

    def enhance(self, image: bytes, request: Enhance) -> Output: ...

    def generate(self, request: Generate) -> Output: ...

    def close(self) -> None: ...


class ServerBackend:
    """Jobs on a running service, through ``imgenhance.client`` (one client for all threads)."""

    def __init__(self, url: str, api_key: str | None = None, job_timeout: float = 600.0) -> None:
        self.name = url
        self.client = Client(url, api_key, job_timeout=job_timeout)

    def enhance(self, image: bytes, request: Enhance) -> Output:
        client, r = self.client, request
        try:
            if r.task == "super-resolve":
                result = client.super_resolve(
                    image,
                    scale=r.scale,
                    outscale=r.outscale,
                    model=r.model,
                    output_format=r.output_format,
                    quality=r.quality,
                )
            elif r.task == "denoise":
                result = client.denoise(
                    image,
                    sigma=r.sigma,
                    strength=r.strength,
                    artifacts=r.artifacts,
                    jpeg_quality=r.jpeg_quality,
                    model=r.model,
                    output_format=r.output_format,
                    quality=r.quality,
                )
            else:
                result = client.style_transfer(
                    image,
                    style=r.style,
                    style_image=r.style_image,
                    strength=r.strength,
                    preserve_color=r.preserve_color,
                    max_side=r.max_side,
                    keep_size=r.keep_size,
                    style_side=r.style_side,
                    output_format=r.output_format,
                    quality=r.quality,
                )
        except ImgenhanceError as exc:
            raise Failed(str(exc)) from exc
        return _output(result)

    def generate(self, request: Generate) -> Output:
        r = request
        try:
            result = self.client.generate(
                model=r.model,
                n=r.n,
                seed=r.seed,
                label=r.label,
                truncation=r.truncation,
                interpolate={"to_seed": r.to_seed, "steps": r.steps} if r.to_seed is not None else None,
                output=r.output,
                output_format=r.output_format,
                quality=r.quality,
            )
        except ImgenhanceError as exc:
            raise Failed(str(exc)) from exc
        return _output(result)

    def close(self) -> None:
        self.client.close()


def _output(result: Result) -> Output:
    return Output(result.data, result.content_type, result.job.model)


class LocalBackend:
    """Jobs in this process: no Redis, no gateway; each model is loaded on first use."""

    name = "local"

    def __init__(self, settings: Settings | None = None) -> None:
        from imgenhance.catalog import Catalog
        from imgenhance.settings import Settings

        self.settings = settings or Settings()
        self.catalog: Catalog = Catalog.load(self.settings.models_dir)
        self._models: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()

    def enhance(self, image: bytes, request: Enhance) -> Output:
        from app.errors import ApiError

        try:
            return self._enhance(image, request)
        except ApiError as exc:  # what the gateway would have refused
            raise Failed(f"{exc.status} {exc.code}: {exc.detail}") from exc

    def _enhance(self, image: bytes, request: Enhance) -> Output:
        from app.errors import InvalidParameter
        from app.probe import probe, verify
        from app.routes.super_resolve import pick_model
        from app.submit import choose_format
        from imgenhance.catalog import UnknownModel
        from imgenhance.params import (
            IMAGE,
            STYLE_IMAGE,
            DenoiseParams,
            StyleTransferParams,
            SuperResolveParams,
            style_source_conflict,
            stylised_scale,
        )

        settings = self.settings
        info = probe(image, settings.max_input_pixels)
        uploads = {IMAGE: image}
        fmt, quality = request.output_format, request.quality
        params: JobParams
        try:
            if request.task == "super-resolve":
                card = pick_model(self.catalog, request.model, request.scale, request.outscale)
                factor = request.outscale or card.scale
                params = SuperResolveParams(
                    model=card.id,
                    scale=card.scale,
                    outscale=request.outscale,
                    output_format=choose_format(info, factor, settings, fmt, quality, f"x{factor:g}"),
                    quality=quality,
                )
            elif request.task == "denoise":
                card = self.catalog.resolve("denoise", request.model)
                params = DenoiseParams(
                    model=card.id,
                    sigma=request.sigma,
                    strength=1.0 if request.strength is None else request.strength,
                    artifacts=request.artifacts or "noise",
                    jpeg_quality=request.jpeg_quality,
                    output_format=choose_format(info, 1, settings, fmt, quality, "denoising"),
                    quality=quality,
                )
            else:
                conflict = style_source_conflict(request.style is not None, request.style_image is not None)
                if conflict:
                    raise InvalidParameter(conflict)
                card = (
                    self.catalog.style(request.style) if request.style is not None else self.catalog.arbitrary_style()
                )
                defaults = StyleTransferParams.model_fields
                max_side = request.max_side or int(defaults["max_side"].default)
                keep_size = defaults["keep_size"].default if request.keep_size is None else request.keep_size
                scale = stylised_scale(info.width, info.height, max_side, keep_size)
                params = StyleTransferParams(
                    model=card.id,
                    style=request.style,
                    strength=1.0 if request.strength is None else request.strength,
                    preserve_color=bool(request.preserve_color),
                    max_side=max_side,
                    keep_size=keep_size,
                    style_side=request.style_side or int(defaults["style_side"].default),
                    output_format=choose_format(info, scale, settings, fmt, quality, "stylising"),
                    quality=quality,
                )
                if request.style_image is not None:
                    probe(request.style_image, settings.max_input_pixels)
                    uploads[STYLE_IMAGE] = request.style_image
        except UnknownModel as exc:
            raise InvalidParameter(str(exc)) from exc
        for data in uploads.values():
            verify(data)
        return self._run(card, params, uploads)

    def generate(self, request: Generate) -> Output:
        from imgenhance.catalog import UnknownModel
        from imgenhance.params import GenerateParams, Interpolation

        try:
            card = self.catalog.resolve("generate", request.model)
        except UnknownModel as exc:
            raise Failed(f"422 invalid-parameter: {exc}") from exc
        interpolate = (
            Interpolation(to_seed=request.to_seed, steps=request.steps) if request.to_seed is not None else None
        )
        params = GenerateParams(
            model=card.id,
            n=request.n,
            seed=request.seed,
            label=_label(card, request.label),
            truncation=request.truncation,
            interpolate=interpolate,
            output=request.output,
            output_format=request.output_format or ("webp" if interpolate else "png"),
            quality=request.quality,
        )
        return self._run(card, params, {})

    def _run(self, card: ModelCard, params: JobParams, uploads: dict[str, bytes]) -> Output:
        """What ``worker.tasks.run_job`` does between reading the uploads and storing the result."""
        from imgenhance.jobs import JobError, WorkerNotEquipped
        from worker.codec import Encoded, decode, encode
        from worker.pipelines import TileSettings, run_encoded

        try:
            model = self._model(card)
            pictures: dict[str, Picture] = {name: decode(data) for name, data in uploads.items()}
            out = run_encoded(params, model, TileSettings.from_settings(self.settings), None, **pictures)
            if isinstance(out, Encoded):
                return Output(out.data, out.content_type, card.id)
            body, content_type = encode(out, params.output_format, params.quality)
        except JobError as exc:
            raise Failed(f"422 job-failed: {exc}") from exc
        except WorkerNotEquipped as exc:
            raise Failed(f"500 job-failed: {exc}") from exc
        return Output(body, content_type, card.id)

    def _model(self, card: ModelCard) -> LoadedModel:
        """The card's ONNX session, loaded (and checked against its card) once."""
        from imgenhance.catalog import Catalog
        from worker.runtime import Runtime

        with self._lock:
            if card.id not in self._models:
                runtime = Runtime(Catalog((card,), self.catalog.root), self.settings)
                self._models[card.id] = runtime.get(card.id)
            return self._models[card.id]

    def close(self) -> None:
        self._models.clear()


def _label(card: ModelCard, label: str | int | None) -> int | None:
    """A class name or index, as the generate route reads it."""
    if label is None:
        return None
    from imgenhance.cards import UnknownClass

    try:
        return card.class_index(label)
    except UnknownClass as exc:
        raise Failed(f"422 invalid-parameter: {exc}") from exc
