#!/usr/bin/env bash
# Builds the Docker image with podman on this machine and checks it end to end: the command
# line in the container, MNIST files from a host folder and a model kept in one, the notebook
# server (on 127.0.0.1 only) answering with its token, and the walkthrough executed headless in
# quick mode. Run as root from anywhere: `bash docker/test.sh`.
#
# No image registry is reachable here, so the base image is made locally (Debian bookworm by
# debootstrap, with Debian's Python) and cached as $BASE_IMAGE between runs; podman runs the
# Dockerfile with the runc runtime and limits within the machine's own. Takes a few minutes the
# first time (the base system and the Python packages are downloaded). CI does not run it.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_IMAGE=localhost/debian-python:bookworm
IMAGE=localhost/mnist-nn:test
PORT=${MNIST_NN_TEST_PORT:-8888}
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
RUN_ID=mnist-nn-test-$$
PODMAN=(podman --runtime runc)
# crun and podman's default limits are refused on this machine; these are within its own.
LIMITS=(--ulimit nofile=20000:20000 --ulimit nproc=4096:4096 --network host)

step() { printf '\n== %s\n' "$*"; }
fail() {
    printf 'FAILED: %s\n' "$*" >&2
    exit 1
}

# Everything this run starts is removed on the way out, whether it passed or not; the base
# image and podman's layer cache stay, so the next run starts from them.
scratch=$(mktemp -d)
cleanup() {
    "${PODMAN[@]}" rm --force --ignore "$RUN_ID-notebook" >/dev/null 2>&1 || true
    "${PODMAN[@]}" volume rm --force "$RUN_ID-data" >/dev/null 2>&1 || true
    "${PODMAN[@]}" rmi --force "$IMAGE" >/dev/null 2>&1 || true
    rm -rf "$scratch"
}
trap cleanup EXIT

step "tools: podman, runc, debootstrap"
if ! command -v podman >/dev/null || ! command -v runc >/dev/null ||
    ! command -v debootstrap >/dev/null; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y podman runc debootstrap
fi
podman --version

# The Debian mirror apt uses here (deb822 .sources files or the one-line format).
debian_mirror() {
    local uri
    uri=$(grep -hs -E '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' |
        grep -v -- '-security' | head -n 1 || true)
    if [[ -z $uri ]]; then
        uri=$(grep -hs -E '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
            awk '{print $2}' | grep -E '/debian/?$' | head -n 1 || true)
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

step "base image $BASE_IMAGE"
if "${PODMAN[@]}" image exists "$BASE_IMAGE"; then
    echo "cached"
else
    mirror=$(debian_mirror)
    echo "debootstrap from $mirror"
    # python3-venv brings ensurepip, so the builder stage can make a venv with its own pip.
    debootstrap --variant=minbase --include=python3,python3-venv bookworm \
        "$scratch/rootfs" "$mirror" >"$scratch/debootstrap.log" ||
        fail "debootstrap (log: $(tail -n 5 "$scratch/debootstrap.log"))"
    rm -rf "$scratch"/rootfs/var/lib/apt/lists/* "$scratch"/rootfs/var/cache/apt/*
    tar -C "$scratch/rootfs" -c . | "${PODMAN[@]}" import - "$BASE_IMAGE"
fi
"${PODMAN[@]}" run --rm "${LIMITS[@]}" "$BASE_IMAGE" python3 --version

step "image $IMAGE"
# pip reaches the registry through this machine's TLS proxy, so it needs this machine's CA
# bundle: mounted for the build and named by PIP_CERT in the builder stage only.
"${PODMAN[@]}" build "${LIMITS[@]}" \
    --build-arg BASE_IMAGE="$BASE_IMAGE" \
    --build-arg PIP_CERT="$CA_BUNDLE" \
    --volume "$CA_BUNDLE:$CA_BUNDLE:ro" \
    --tag "$IMAGE" . >"$scratch/build.log" 2>&1 ||
    fail "podman build (log: $(tail -n 20 "$scratch/build.log"))"
grep -E '^(STEP|COMMIT|Successfully)' "$scratch/build.log" || true
"${PODMAN[@]}" image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$IMAGE"

step "the image: a non-root user, a writable data volume, no build tools, not our CA bundle"
# The base has Debian's public CA bundle; this machine's (with its proxy's CA) must not be there.
host_ca_sum=$(sha256sum "$CA_BUNDLE" | cut -d ' ' -f 1)
"${PODMAN[@]}" run --rm "${LIMITS[@]}" -v "$RUN_ID-data:/data" -e HOST_CA_SUM="$host_ca_sum" \
    "$IMAGE" sh -c '
    echo "user $(id -un) ($(id -u)), MNIST_NN_DATA=$MNIST_NN_DATA"
    [ "$(id -u)" != 0 ] || exit 11
    touch /data/written && rm /data/written || exit 12
    for tool in gcc cc make; do ! command -v "$tool" || exit 13; done
    find / -xdev -type f -name "*.crt" -exec sha256sum {} + 2>/dev/null |
        grep -q "^$HOST_CA_SUM" && exit 14
    echo ok' || fail "image checks (exit $?: 11 root, 12 /data, 13 build tools, 14 CA bundle)"

step "command line: train --dataset synthetic --limit 2000 --n-epochs 1"
"${PODMAN[@]}" run --rm "${LIMITS[@]}" -v "$RUN_ID-data:/data" "$IMAGE" \
    train --dataset synthetic --limit 2000 --n-epochs 1 | tee "$scratch/train.log"
grep -q 'test accuracy' "$scratch/train.log" || fail "train printed no test accuracy"

step "MNIST files from a host folder, the model kept in a host folder"
# Four small IDX files stand in for MNIST's (valid files with other content: used, with a
# warning); the container reads them from the mounted folder and downloads nothing.
# As the README says: the folders belong to a user of this machine, and the container runs as
# that user (--user), so the files it writes are theirs.
mkdir -p "$scratch/mnist" "$scratch/runs"
chown 1234:1234 "$scratch/mnist" "$scratch/runs"
host_user=(--user 1234:1234)
"${PODMAN[@]}" run --rm "${LIMITS[@]}" "${host_user[@]}" -v "$scratch/mnist:/data" "$IMAGE" python -c '
import mnist_nn as nn
from mnist_nn.idx import write_idx
(X_train, y_train), (X_test, y_test) = nn.load_dataset("synthetic", n_train=1000, n_test=200)
for name, array in [("train-images-idx3-ubyte", X_train), ("train-labels-idx1-ubyte", y_train),
                    ("t10k-images-idx3-ubyte", X_test), ("t10k-labels-idx1-ubyte", y_test)]:
    write_idx("/data/" + name, array)
'
"${PODMAN[@]}" run --rm "${LIMITS[@]}" "${host_user[@]}" -v "$scratch/mnist:/data" \
    -v "$scratch/runs:/app/runs" "$IMAGE" train --n-epochs 1 2>&1 | tee "$scratch/host-files.log"
grep -q 'test accuracy' "$scratch/host-files.log" || fail "train on the host's files printed no test accuracy"
! grep -q -i 'downloading' "$scratch/host-files.log" || fail "train downloaded instead of reading the host's files"
[[ -s $scratch/runs/mlp.npz && -s $scratch/runs/mlp.png ]] || fail "no model in the host folder"
[[ $(stat -c %u "$scratch/runs/mlp.npz") == 1234 ]] || fail "the model does not belong to the host's user"
ls -ln "$scratch/runs"

step "notebook server, on 127.0.0.1 only"
# Host networking (see LIMITS), so the container's port is this machine's: JUPYTER_IP keeps the
# server on the loopback interface. JUPYTER_PORT picks the port, and Jupyter moves to the next
# free one if it is taken: the URL is read from the log.
"${PODMAN[@]}" run --detach --name "$RUN_ID-notebook" "${LIMITS[@]}" \
    -e JUPYTER_IP=127.0.0.1 -e JUPYTER_PORT="$PORT" -v "$RUN_ID-data:/data" "$IMAGE" >/dev/null
url=""
for _ in $(seq 60); do
    url=$("${PODMAN[@]}" logs "$RUN_ID-notebook" 2>&1 |
        grep -o -E 'http://127\.0\.0\.1:[0-9]+/[^ ]*token=[0-9a-f]+' | head -n 1 || true)
    [[ -n $url ]] && break
    sleep 1
done
"${PODMAN[@]}" logs "$RUN_ID-notebook" 2>&1 | grep -E 'Jupyter Server|Notebook|http://' | head -n 8
[[ -n $url ]] || fail "no URL with a token in the server's log"
port=$(grep -o -E '127\.0\.0\.1:[0-9]+' <<<"$url" | cut -d : -f 2)
listening=$(ss -H -l -t -n "sport = :$port" | awk '{print $4}')
echo "listening on: $listening"
[[ -n $listening ]] || fail "nothing listens on port $port"
! grep -q -v -E '^(127\.0\.0\.1|\[::1\]):' <<<"$listening" || fail "the server listens beyond 127.0.0.1"
page_url=$(sed -E 's#(127\.0\.0\.1:[0-9]+)/[^?]*#\1/notebooks/MNIST-Walkthrough.ipynb#' <<<"$url")
status=$(curl -sS -o "$scratch/page.html" -w '%{http_code}' "$page_url")
echo "GET ${page_url%%token=*}token=...: HTTP $status"
[[ $status == 200 ]] || fail "notebook page answered HTTP $status"
grep -q -i '<title>' "$scratch/page.html" || fail "the notebook page has no title"
status=$(curl -sS -o /dev/null -w '%{http_code}' "${page_url%%\?*}")
echo "GET without the token: HTTP $status"
[[ $status != 200 ]] || fail "the notebook page is served without the token"
"${PODMAN[@]}" rm --force "$RUN_ID-notebook" >/dev/null

step "walkthrough executed headless, quick mode"
"${PODMAN[@]}" run --rm "${LIMITS[@]}" -e MNIST_NN_QUICK=1 "$IMAGE" \
    jupyter nbconvert --to notebook --execute --stdout \
    --ExecutePreprocessor.timeout=300 MNIST-Walkthrough.ipynb \
    >"$scratch/executed.ipynb" 2>"$scratch/nbconvert.log" ||
    fail "the notebook raised (log: $(tail -n 20 "$scratch/nbconvert.log"))"
for expected in 'data set: synthetic' 'all below 1e-6: True' 'results card, seeds 0, 1, 2' \
    'loaded model gives the same predictions: True' 'CNN: test accuracy'; do
    grep -q -F "$expected" "$scratch/executed.ipynb" || fail "no '$expected' in the outputs"
    echo "output has: $expected"
done

step "all checks passed"
