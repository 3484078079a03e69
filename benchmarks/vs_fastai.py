"""The generated project's ``train`` against fastai's ``fine_tune``, on the same work.

Same image folder (one train/ and one val/ split, so both validate on the same images), same timm
backbone, same local weights file, same image size, batch size and epoch budget:

    fastai     vision_learner(dls, BACKBONE).fine_tune(N)      1 frozen epoch + N epochs
    template   train --freeze-epochs 1 --epochs N+1            1 frozen epoch + N epochs

Each runs as its own process; the wall time is from process start to exit (imports, building the
datasets and the first batch count: a beginner waits for all of it). Prints both wall times and final
validation accuracies. fastai is an optional benchmark dependency (``pip install fastai``).

    taskset -c 0,1 python benchmarks/vs_fastai.py --weights efficientnet_lite0.pth --epochs 5

Without ``--weights`` a file of randomly initialised weights is written and used: that still compares
speed, but the accuracy comparison only means something with real ImageNet weights (for example
``timm.create_model(NAME, pretrained=True).state_dict()`` saved with ``torch.save`` on a machine online).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_fastai(data: Path, backbone: str, weights: Path, size: int, batch: int, epochs: int, out: Path) -> None:
    """fastai's standard recipe (presizing + aug_transforms + fine_tune), with the weights file loaded."""
    import timm
    import torch
    from fastai.vision.all import (
        ImageDataLoaders,
        Normalize,
        Resize,
        accuracy,
        aug_transforms,
        vision_learner,
    )

    # The normalisation the backbone was trained with: what vision_learner adds itself for a pretrained timm
    # model. Read from timm's registry, so no extra network is built inside fastai's timed process.
    stats = timm.models.get_pretrained_cfg(backbone)
    dls = ImageDataLoaders.from_folder(
        data, train="train", valid="val", bs=batch, seed=42,
        item_tfms=Resize(size * 2),
        batch_tfms=[*aug_transforms(size=size, min_scale=0.75), Normalize.from_stats(stats.mean, stats.std)],
    )
    # pretrained=False stops fastai (timm) from downloading; the same weights come from the file instead.
    learn = vision_learner(dls, backbone, pretrained=False, metrics=accuracy)
    body = learn.model[0].model
    state = torch.load(weights, map_location="cpu", weights_only=True)
    own = body.state_dict()
    body.load_state_dict({k: v for k, v in state.items() if k in own and v.shape == own[k].shape}, strict=False)
    learn.fine_tune(epochs)
    # The accuracy fine_tune measured after its last epoch (the recorder's columns: train_loss, valid_loss, accuracy).
    out.write_text(json.dumps({"val_acc": float(learn.recorder.values[-1][2])}), encoding="utf-8")


def bake(out: Path) -> tuple[Path, str]:
    """Generate a project from this template with its defaults; returns its folder and package name."""
    from cookiecutter.main import cookiecutter

    project = Path(cookiecutter(str(ROOT), no_input=True, output_dir=str(out), overwrite_if_exists=True))
    (package,) = [p.name for p in (project / "src").iterdir() if (p / "__init__.py").is_file()]
    return project, package


def write_dataset(out: Path, size: int, val_fraction: float = 0.2, seed: int = 42) -> Path:
    """scikit-learn's digits as PNG class folders, with a stratified val/ folder both tools use."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from sample_data import write_digits

    write_digits(out, size=size)
    rng = random.Random(seed)
    for class_dir in sorted((out / "train").iterdir()):
        images = sorted(class_dir.glob("*.png"))
        rng.shuffle(images)
        (out / "val" / class_dir.name).mkdir(parents=True, exist_ok=True)
        for image in images[: round(len(images) * val_fraction)]:
            shutil.move(image, out / "val" / class_dir.name / image.name)
    return out


def write_random_weights(backbone: str, path: Path) -> Path:
    import timm
    import torch

    torch.manual_seed(0)
    torch.save(timm.create_model(backbone, pretrained=False).state_dict(), path)
    return path


def timed(command: list[str], env: dict | None = None, log: Path | None = None) -> float:
    """Seconds from process start to exit; fails loudly if the process fails."""
    start = time.perf_counter()
    with open(log, "w") if log else open(os.devnull, "w") as output:
        result = subprocess.run(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{command[:4]} failed with exit code {result.returncode}; see {log}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--weights", type=Path, help="local weights file of the backbone (default: random init)")
    parser.add_argument("--data", type=Path, help="an image folder with train/ and val/ (default: the digits)")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=5, help="N: fine_tune(N) and train --epochs N+1")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--keep", type=Path, help="keep logs and run folders here")
    parser.add_argument("--fastai-worker", nargs=2, metavar=("DATA", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.fastai_worker:  # the fastai side, in its own process
        data, out = map(Path, args.fastai_worker)
        run_fastai(data, args.backbone, args.weights, args.image_size, args.batch_size, args.epochs, out)
        return

    with tempfile.TemporaryDirectory(prefix="vs-fastai-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        project, package = bake(work / "bake")
        data = args.data or write_dataset(work / "digits", size=2 * args.image_size)
        weights = args.weights or write_random_weights(args.backbone, work / f"{args.backbone}-random.pth")
        if not args.weights:
            print(f"No --weights given: using random weights ({weights}); the accuracies mean little.")

        fastai_out = work / "fastai.json"
        fastai_seconds = timed(
            [sys.executable, __file__, "--backbone", args.backbone, "--weights", str(weights), "--image-size",
             str(args.image_size), "--batch-size", str(args.batch_size), "--epochs", str(args.epochs),
             "--fastai-worker", str(data), str(fastai_out)],
            log=work / "fastai.log",
        )
        fastai_acc = json.loads(fastai_out.read_text())["val_acc"]
        print(f"fastai:   {fastai_seconds:6.1f} s  val_acc {fastai_acc:.4f}", flush=True)

        env = {**os.environ, "PYTHONPATH": str(project / "src")}
        template_seconds = timed(
            [sys.executable, "-m", package, "train", "--data", str(data), "--backbone", args.backbone,
             "--weights", str(weights), "--image-size", str(args.image_size), "--batch-size", str(args.batch_size),
             "--freeze-epochs", "1", "--epochs", str(args.epochs + 1),
             "--output", str(work / "runs"), "--name", "vs-fastai"],
            env=env, log=work / "template.log",
        )
        metrics = json.loads((work / "runs" / "vs-fastai" / "metrics.json").read_text())
        template_acc = metrics["val_acc"]
        print(f"template: {template_seconds:6.1f} s  val_acc {template_acc:.4f}")

        result = {
            "fastai": {"seconds": round(fastai_seconds, 1), "val_acc": round(fastai_acc, 4)},
            "template": {"seconds": round(template_seconds, 1), "val_acc": round(template_acc, 4)},
            "wall_ratio": round(template_seconds / fastai_seconds, 3),
            "acc_difference": round(template_acc - fastai_acc, 4),
            "settings": {"backbone": args.backbone, "image_size": args.image_size, "batch_size": args.batch_size,
                         "fine_tune_epochs": args.epochs, "weights": str(args.weights or "random init"),
                         "data": str(args.data or "sklearn digits"), "cpu_cores": len(os.sched_getaffinity(0))},
        }
        print(json.dumps(result, indent=2))
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
