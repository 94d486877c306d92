# Latent Lab in a container: one replica of the app (for a class, several behind HAProxy:
# deploy/compose.yaml, deploy/k8s.yaml; on one machine without containers, `make class`).
#
#   docker build -t latentlab .
#   docker run --rm -p 8501:8501 -v latentlab-user:/data/user_checkpoints latentlab
#
# Offline once built: the pinned requirements, onnxruntime-web (the sliders' in-browser decoder),
# the shipped checkpoints/ and the embedded data/ are all inside the image.

# ---- stage 1: onnxruntime-web into static/ort/, as `make web` does (npm ci from the lock file)
FROM node:20-bookworm-slim AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json web/build.mjs web/LICENSE-onnxruntime.txt ./
RUN npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && node build.mjs
# build.mjs writes ../static/ort/ = /src/static/ort/

# ---- stage 2: the app
FROM python:3.11-slim

# requirements.txt pins torch==2.14.1 and torchvision==0.29.1 (plain PyPI pins, no index URL).
# PyPI's Linux wheels of torch carry the CUDA libraries (gigabytes); the PyTorch CPU index serves
# 2.14.1+cpu, which satisfies ==2.14.1 (PEP 440: a local version matches a pin without one) and
# is picked over PyPI's as the higher version. For a GPU image: --build-arg TORCH_INDEX=
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LATENTLAB_USER_CHECKPOINTS=/data/user_checkpoints \
    LATENTLAB_CACHE=/home/latentlab/.cache/latentlab

WORKDIR /app
COPY requirements.txt ./
# Byte-compiled at install (not --no-compile as in `make setup`): the non-root user cannot write
# __pycache__ here, so every start would otherwise compile torch's imports again.
RUN pip install ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"} -r requirements.txt

# A non-root user owns what the app writes: the user checkpoints (a volume), the browser
# decoders it exports once per model (static/decoders/) and its download cache.
RUN useradd --create-home --uid 10001 --user-group latentlab \
    && mkdir -p /data/user_checkpoints /app/static/decoders /home/latentlab/.cache/latentlab \
    && chown -R latentlab:latentlab /data/user_checkpoints /app/static/decoders /home/latentlab/.cache

COPY --chown=root:root . .
RUN python -m compileall -q app.py serve.py core pages
COPY --from=web /src/static/ort /app/static/ort

USER latentlab
VOLUME ["/data/user_checkpoints"]
EXPOSE 8501

HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).status != 200)"]

CMD ["python", "serve.py", "--server.headless", "true", "--server.address", "0.0.0.0", "--server.port", "8501", "--browser.gatherUsageStats", "false"]
