# The walkthrough and the command line in one image:
#   docker build -t mnist-nn .
#   docker run -p 8888:8888 -v mnist-data:/data mnist-nn            # Notebook 7 on the walkthrough
#   docker run -v mnist-data:/data mnist-nn train --n-epochs 5       # any `python -m mnist_nn` command
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
# Only the dependencies: the package itself is the copy in /app, the working folder (so an
# editable "-e ." line, for clones, is left out).
RUN if [ -n "$PIP_CERT" ]; then export PIP_CERT; else unset PIP_CERT; fi \
    && grep -v -E '^[[:space:]]*-e[[:space:]]' /tmp/requirements.txt >/tmp/dependencies.txt \
    && /opt/venv/bin/python -m pip install --no-cache-dir --disable-pip-version-check \
        --only-binary=:all: -r /tmp/dependencies.txt

# Final: the base image, the venv and the project; a non-root user owns the working folder.
FROM ${BASE_IMAGE}
RUN useradd --create-home --uid 1000 --shell /bin/sh learner \
    && mkdir /data /app \
    && chown learner:learner /data /app
COPY --from=builder /opt/venv /opt/venv
COPY --chown=learner:learner mnist_nn/ /app/mnist_nn/
COPY --chown=learner:learner examples/ /app/examples/
COPY --chown=learner:learner MNIST-Walkthrough.ipynb README.md /app/
COPY docker/entrypoint.sh /usr/local/bin/mnist-nn-entrypoint
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MPLBACKEND=Agg \
    MNIST_NN_DATA=/data
USER learner
WORKDIR /app
# MNIST is downloaded into /data once; a named volume keeps it between containers.
VOLUME /data
EXPOSE 8888
ENTRYPOINT ["mnist-nn-entrypoint"]
CMD ["notebook"]
