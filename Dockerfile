# cnnsearch worker/dashboard image. CUDA comes with the torch wheels; the host needs the
# NVIDIA container toolkit for GPU workers (see docker-compose.yml).
#
# The base image is pinned by Python minor version and Debian release; torch and torchvision
# are the releases the Makefile pins (TORCH_PINS: `make up` passes its value, the default
# below is the same and tests/test_compose.py keeps the two equal).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}

ARG TORCH_PINS="torch==2.14.1 torchvision==0.29.1"
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

# torch first, in its own layer: it is most of the image and changes least often.
RUN pip install ${TORCH_PINS}
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
