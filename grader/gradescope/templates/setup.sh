#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (Ubuntu). Written by
# `backprop-grader gradescope build`; the values below were chosen then.
#
# Installs Python >= 3.11 if the image has none, a virtual environment in $PREFIX holding torch and
# backprop-grader, and bubblewrap (the sandbox's strongest mode) where apt-get can. Without bubblewrap,
# or where the container may not create namespaces, the grader uses its fallback sandbox.
# torch is the CPU build from the PyTorch CPU wheel index unless the zip was built with
# --torch-build cuda (pip's default index: the CUDA build, 2.74 GB of wheels) or --torch-index-url.
set -euo pipefail

TORCH_VERSION='@TORCH_VERSION@'
TORCH_BUILD='@TORCH_BUILD@'
TORCH_INDEX_URL='@TORCH_INDEX_URL@'
WHEEL='@WHEEL@'
RUBRIC='@RUBRIC@'
PREFIX='@PREFIX@'
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1

updated=0
apt_install() {
  command -v apt-get >/dev/null || return 1
  if [ "$updated" = 0 ]; then apt-get update -qq || true; updated=1; fi
  apt-get install -y -qq --no-install-recommends "$@"
}

find_python() {
  local candidate
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

PY="$(find_python || true)"
if [ -z "$PY" ]; then
  apt_install python3.11 python3.11-venv || apt_install python3 python3-venv || true
  PY="$(find_python || true)"
fi
if [ -z "$PY" ]; then
  echo "setup.sh: backprop-grader needs Python 3.11 or newer and none could be installed;" \
       "choose a newer Ubuntu base image for this assignment (22.04 or later)" >&2
  exit 1
fi
VERSION="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if ! "$PY" -c 'import ensurepip, venv' 2>/dev/null; then
  apt_install "python${VERSION}-venv" || apt_install python3-venv || true
fi

"$PY" -m venv "$PREFIX/venv"
VPY="$PREFIX/venv/bin/python"
"$VPY" -m pip install --quiet --upgrade pip || true
echo "setup.sh: installing torch $TORCH_VERSION, $TORCH_BUILD, from ${TORCH_INDEX_URL:-the default index}"
if [ -n "$TORCH_INDEX_URL" ]; then
  "$VPY" -m pip install --quiet "torch==$TORCH_VERSION" --index-url "$TORCH_INDEX_URL"
else
  "$VPY" -m pip install --quiet "torch==$TORCH_VERSION"
fi
"$VPY" -m pip install --quiet "$HERE/$WHEEL"

if ! command -v bwrap >/dev/null; then
  apt_install bubblewrap || echo "setup.sh: bubblewrap not installed; the grader will use its fallback sandbox" >&2
fi

# Student code may read the Python installation but not the grader: make its packages root-only.
"$VPY" - <<'PY'
import importlib.util, os
for name in ("grader", "reference", "rubrics"):
    for folder in importlib.util.find_spec(name).submodule_search_locations:
        os.chmod(folder, 0o700)
PY
chmod 700 "$HERE"

"$PREFIX/venv/bin/backprop-grader" rubric validate "$HERE/$RUBRIC"
"$VPY" -c 'import numpy, torch; print("numpy", numpy.__version__, "torch", torch.__version__)'
