# cnnsearch worker/dashboard image. CUDA comes with the torch wheels; the host needs the
# NVIDIA container toolkit for GPU workers (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY search ./search
COPY models ./models
COPY data ./data
RUN pip install .

COPY configs ./configs
# Datasets are read from (and downloaded into) here unless the config sets data_dir; compose
# mounts one shared volume here and create-study --prepare-data fills it once.
ENV CNNSEARCH_DATA_DIR=/data HOME=/app
RUN useradd --create-home --uid 1000 cnnsearch && mkdir -p /shared /data \
    && chown cnnsearch /shared /data /app
USER cnnsearch

ENTRYPOINT []
CMD ["cnnsearch", "--help"]
