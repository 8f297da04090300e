#!/bin/sh
# What the container runs: the walkthrough in Notebook 7 (the default) or JupyterLab, a
# `python -m mnist_nn` command, or any other program given.
set -eu

# The server listens on port 8888 ($JUPYTER_PORT changes it) of every interface of the
# container, as publishing a port needs (-p 127.0.0.1:8888:8888 keeps it on the host's own
# loopback); $JUPYTER_IP narrows it, e.g. with host networking. It prints its URL with the token.
jupyter_options="--ip=${JUPYTER_IP:-0.0.0.0} --no-browser"

case "${1:-notebook}" in
notebook)
    shift $(($# > 0 ? 1 : 0))
    # shellcheck disable=SC2086  # the options are separate words
    exec jupyter notebook $jupyter_options "$@" MNIST-Walkthrough.ipynb
    ;;
lab)
    shift
    # shellcheck disable=SC2086
    exec jupyter lab $jupyter_options "$@" MNIST-Walkthrough.ipynb
    ;;
download | train | evaluate | predict | bench | -h | --help)
    exec python -m mnist_nn "$@"
    ;;
*)
    exec "$@"
    ;;
esac
