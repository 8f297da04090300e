# The walkthrough and the command line in one image:
#   docker build -t mnist-nn .
#   docker run -p 127.0.0.1:8888:8888 -v mnist-data:/data mnist-nn           # the walkthrough
#   docker run -v mnist-data:/data -v mnist-runs:/app/runs mnist-nn train      # a kept model
# docker/entrypoint.sh says what else it runs; docker/test.sh builds and checks it with podman.

# Any image with Python 3.10+ and pip at the same paths in both stages will do (docker/test.sh
# passes a local Debian one, as no registry is reachable there).
ARG BASE_IMAGE=python:3.11-slim

# Builder: the virtual environment with every requirement, from wheels (nothing compiles, so
# this stage needs no compiler either; its pip and caches stay behind).
FROM ${BASE_IMAGE} AS builder
# The path of a CA bundle for pip, for builds behind a TLS proxy: mount the file at build time
# (podman/docker build --volume), never copy it into the image.
ARG PIP_CERT=""
RUN python3 -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
# The dependencies first (a layer that stays cached while the code changes), from
# requirements.txt without its editable "-e ." line, which is for clones.
RUN if [ -n "$PIP_CERT" ]; then export PIP_CERT; else unset PIP_CERT; fi \
    && grep -v -E '^[[:space:]]*-e[[:space:]]' /tmp/requirements.txt >/tmp/dependencies.txt \
    && /opt/venv/bin/python -m pip install --no-cache-dir --disable-pip-version-check \
        --only-binary=:all: -r /tmp/dependencies.txt
# Then the package itself, installed as a release would be (with its package data), so that
# `python -m mnist_nn` works in any folder of the container.
COPY pyproject.toml README.md LICENSE MANIFEST.in /tmp/src/
COPY mnist_nn/ /tmp/src/mnist_nn/
RUN if [ -n "$PIP_CERT" ]; then export PIP_CERT; else unset PIP_CERT; fi \
    && /opt/venv/bin/python -m pip install --no-cache-dir --disable-pip-version-check \
        --no-deps /tmp/src

# Final: the base image, the venv and the project; a non-root user owns the working folder.
FROM ${BASE_IMAGE}
# /app/runs is where `train` saves models: mount a volume or a host folder there to keep them.
RUN useradd --create-home --uid 1000 --shell /bin/sh learner \
    && mkdir -p /data /app/runs \
    && chown -R learner:learner /data /app
COPY --from=builder /opt/venv /opt/venv
COPY --chown=learner:learner MNIST-Walkthrough.ipynb README.md /app/
COPY docker/entrypoint.sh /usr/local/bin/mnist-nn-entrypoint
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MPLBACKEND=Agg \
    MNIST_NN_DATA=/data
USER learner
WORKDIR /app
# MNIST is downloaded into /data once; a named volume keeps it between containers, and a host
# folder that already holds the four files can be mounted there instead.
VOLUME /data
EXPOSE 8888
ENTRYPOINT ["mnist-nn-entrypoint"]
CMD ["notebook"]
