"""Does ``review`` find the mislabelled training photos? Flip labels on purpose, then count what it finds.

For each dataset (real images, built offline by ``sample_data.py``), noise level and seed: move a
seeded random ``noise`` share of the TRAINING photos into a wrong class folder (val/ stays clean and is
where accuracy is measured), train the generated project on that noisy folder with real weights, and
rank the training photos with every scoring method below. Each method's top k suspects (k = number
flipped) are compared with the flipped photos: precision = flipped among the top k / k, recall =
flipped among the top k / flipped (equal when k = number flipped; both are kept for other k).

    top-loss            fastai's way: the trained model's loss on its own training photos
    in-sample+cleanlab  the trained model's in-sample probabilities, cleanlab's normalized_margin score
                        (its default, self_confidence, ranks exactly like top-loss)
    probe-pretrained    5-fold cross-validated logistic regression on the frozen features of the
                        starting backbone (the --weights file), cleanlab's label quality score
    probe-finetuned     the same probe on the run's fine-tuned backbone (best.ckpt)
    probe-both          the same probe on both feature sets side by side
    review              the project's own ``review RUN --csv`` ranking, as a user gets it

Then the best-ranked method's suggestions are applied (its top k suspects moved to the class it
suggests) and the project is trained again: val accuracy of noisy vs fixed (vs clean, for reference).

    python ../shared/tools/imagenet_weights.py efficientnet_lite0 lite0.pth
    taskset -c 0,1 python benchmarks/review.py --weights lite0.pth --seeds 0,1

Writes every run and the summary to benchmarks/review.json (or --json FILE) and prints a table.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))  # sample_data.py: the images, built offline

from sample_data import RECIPE_DATASETS  # noqa: E402

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
SOURCE_SIZE = {"digits": 32, "textures": 32, "faces": 25, "photo-crops": 256, "uneven-digits": 32}
PROBE_FOLDS = 5
METHODS = ("top-loss", "in-sample+cleanlab", "probe-pretrained", "probe-finetuned", "probe-both", "review")


# ---- the noisy folder ------------------------------------------------------------------------------
def train_images(data: Path) -> list[Path]:
    """Every image of ``data/train/<class>/``, in a fixed order."""
    return sorted(p for p in (data / "train").glob("*/*") if p.suffix.lower() in IMAGE_SUFFIXES)


def flip_labels(data: Path, fraction: float, seed: int) -> list[dict]:
    """Move ``round(fraction * n)`` of the n training photos, chosen at random with ``seed``, each into
    another class folder (also chosen at random) of train/; val/ and test/ are left alone. A name taken
    in the target folder gets a number, so no file is overwritten. Returns one row per moved photo:
    its new path (relative to ``data``, as in splits.csv), its true class and the wrong one it now has."""
    rng = np.random.default_rng(seed)
    images = train_images(data)
    classes = sorted(p.name for p in (data / "train").iterdir() if p.is_dir())
    flipped = []
    for index in sorted(rng.choice(len(images), size=round(fraction * len(images)), replace=False)):
        source = images[index]
        true = source.parent.name
        given = str(rng.choice([c for c in classes if c != true]))
        target, number = data / "train" / given / source.name, 1
        while target.exists():
            target, number = target.with_name(f"{source.stem}-{number}{source.suffix}"), number + 1
        source.rename(target)
        flipped.append({"path": target.relative_to(data).as_posix(), "true": true, "given": given})
    return flipped


def apply_suggestions(data: Path, moves: list[tuple[str, str]]) -> None:
    """Move each (path relative to ``data``, class) into that class folder of its split, never overwriting."""
    for path, suggested in moves:
        source = data / path
        target, number = source.parent.parent / suggested / source.name, 1
        while target.exists():
            target, number = target.with_name(f"{source.stem}-{number}{source.suffix}"), number + 1
        source.rename(target)


# ---- the project's commands ------------------------------------------------------------------------
def bake(out: Path) -> tuple[Path, str]:
    """Generate a project from this template with its defaults; returns its folder and package name."""
    from cookiecutter.main import cookiecutter

    project = Path(cookiecutter(str(ROOT), no_input=True, output_dir=str(out), overwrite_if_exists=True))
    (package,) = [p.name for p in (project / "src").iterdir() if (p / "__init__.py").is_file()]
    return project, package


def command(project: Path, package: str, arguments: list[str], log: Path) -> float:
    """Run ``python -m PACKAGE ARGUMENTS`` as a user would; seconds taken. Stops the benchmark on failure."""
    env = {**os.environ, "PYTHONPATH": str(project / "src"), "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    with open(log, "w") as output:
        result = subprocess.run([sys.executable, "-m", package, *arguments], env=env, stdout=output,
                                stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise SystemExit(f"{package} {arguments[0]} failed with exit code {result.returncode}; see {log}")
    return time.perf_counter() - start


def train(args, project: Path, package: str, data: Path, runs: Path, name: str, seed: int) -> dict:
    seconds = command(project, package, [
        "train", "--data", str(data), "--weights", str(args.weights), "--image-size", str(args.image_size),
        "--epochs", str(args.epochs), "--seed", str(seed), "--accelerator", "cpu", "--output", str(runs),
        "--name", name], runs.parent / f"train-{name}.log")
    metrics = json.loads((runs / name / "metrics.json").read_text(encoding="utf-8"))
    return {"val_acc": metrics["val_acc"], "seconds": round(seconds, 1)}


# ---- the scoring methods ---------------------------------------------------------------------------
def load_project(project: Path, package: str):
    sys.path.insert(0, str(project / "src"))
    return (importlib.import_module(f"{package}.predict"), importlib.import_module(f"{package}.model.weights"))


def model_outputs(project_modules, run: Path, data: Path, weights: Path) -> dict:
    """The run's in-sample probabilities of every training photo, and the pooled features of the fine-tuned
    and of the starting backbone, all from the photos prepared exactly as the project validates."""
    import torch

    predict, network = project_modules
    classifier = predict.load_classifier(run, accelerator="cpu")
    paths = train_images(data)
    labels = np.array([classifier.class_names.index(p.parent.name) for p in paths])
    fine_tuned = getattr(classifier.network, "network", classifier.network)  # inside the mirror average
    starting, _ = network.starting_network({"backbone": classifier.backbone, "weights": str(weights)}, 0)
    starting.eval()
    probs, features = [], {"finetuned": [], "pretrained": []}
    with torch.inference_mode():
        for start in range(0, len(paths), 64):
            batch = torch.stack([classifier.load_image(p) for p in paths[start:start + 64]])
            probs.append(classifier.probabilities(batch))
            x = classifier.network_input(batch)
            for name, net in (("finetuned", fine_tuned), ("pretrained", starting)):
                # The mirror image's features averaged in (as the project predicts with flip: true).
                both = [net.forward_head(net.forward_features(v), pre_logits=True) for v in (x, x.flip(-1))]
                features[name].append((both[0] + both[1]) / 2)
    return {"paths": [p.relative_to(data).as_posix() for p in paths], "labels": labels,
            "class_names": classifier.class_names, "probs": torch.cat(probs).numpy(),
            **{name: torch.cat(rows).numpy() for name, rows in features.items()}}


def probe_probabilities(features: np.ndarray, labels: np.ndarray, seed: int) -> np.ndarray:
    """Out-of-sample probabilities: each photo's from a logistic regression that never saw its label."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    folds = min(PROBE_FOLDS, int(np.bincount(labels).min()))
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return cross_val_predict(probe, features, labels, method="predict_proba",
                             cv=StratifiedKFold(folds, shuffle=True, random_state=seed))


def rankings(outputs: dict, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per method: photo indices, most suspicious first, and the class it suggests for each photo."""
    from cleanlab.rank import get_label_quality_scores

    labels, probs = outputs["labels"], outputs["probs"]
    ranked = {
        "top-loss": (np.argsort(probs[np.arange(len(labels)), labels], kind="stable"), probs.argmax(1)),
        "in-sample+cleanlab": (np.argsort(get_label_quality_scores(labels, probs, method="normalized_margin"),
                                          kind="stable"), probs.argmax(1)),
    }
    for name, features in (("probe-pretrained", outputs["pretrained"]), ("probe-finetuned", outputs["finetuned"]),
                           ("probe-both", np.hstack([outputs["pretrained"], outputs["finetuned"]]))):
        out_of_sample = probe_probabilities(features, labels, seed)
        ranked[name] = (np.argsort(get_label_quality_scores(labels, out_of_sample), kind="stable"),
                        out_of_sample.argmax(1))
    return ranked


def review_ranking(project: Path, package: str, run: Path, outputs: dict, work: Path) -> tuple[np.ndarray, np.ndarray]:
    """The project's ``review RUN --csv`` ranking of the training photos (val rows are left out)."""
    out = work / f"review-{run.name}.csv"
    command(project, package, ["review", str(run), "--csv", str(out), "--accelerator", "cpu"],
            work / f"review-{run.name}.log")
    index = {path: i for i, path in enumerate(outputs["paths"])}
    order, suggested = [], np.array(outputs["labels"])
    with open(out, newline="", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            if row["path"] in index and index[row["path"]] not in order:
                order.append(index[row["path"]])
                suggested[index[row["path"]]] = outputs["class_names"].index(row["suggested"])
    rest = [i for i in range(len(index)) if i not in set(order)]  # not listed: least suspicious
    return np.array(order + rest), suggested


def found(order: np.ndarray, paths: list[str], flipped: set[str], k: int) -> dict:
    hits = len({paths[i] for i in order[:k]} & flipped)
    return {"precision": round(hits / k, 4) if k else None,
            "recall": round(hits / len(flipped), 4) if flipped else None}


# ---- one cell and the summary ----------------------------------------------------------------------
def run_cell(args, work: Path, project: Path, package: str, modules, dataset: str, noise: float, seed: int) -> dict:
    clean = work / "data" / f"{dataset}-{seed}"
    if not clean.exists():
        RECIPE_DATASETS[dataset](clean, SOURCE_SIZE[dataset], seed=seed)
    cell = f"{dataset}-{noise:g}-{seed}"
    noisy = work / "data" / cell
    shutil.rmtree(noisy, ignore_errors=True)
    shutil.copytree(clean, noisy)
    flips = flip_labels(noisy, noise, seed)
    flipped = {f["path"] for f in flips}
    result: dict = {"dataset": dataset, "noise": noise, "seed": seed, "train_images": len(train_images(noisy)),
                    "flipped": len(flips)}
    result["noisy"] = train(args, project, package, noisy, work / "runs", cell, seed)
    start = time.perf_counter()
    outputs = model_outputs(modules, work / "runs" / cell, noisy, args.weights)
    ranked = rankings(outputs, seed)
    result["scoring_seconds"] = round(time.perf_counter() - start, 1)
    if args.review:
        ranked["review"] = review_ranking(project, package, work / "runs" / cell, outputs, work)
    result["methods"] = {name: found(order, outputs["paths"], flipped, len(flips))
                         for name, (order, _) in ranked.items()}
    if args.retrain and noise in args.retrain:
        best = max(ranked, key=lambda name: result["methods"][name]["recall"] or 0)
        order, suggested = ranked[best]
        fixed = work / "data" / f"{cell}-fixed"
        shutil.rmtree(fixed, ignore_errors=True)
        shutil.copytree(noisy, fixed)
        moves = [(outputs["paths"][i], outputs["class_names"][suggested[i]]) for i in order[:len(flips)]
                 if suggested[i] != outputs["labels"][i]]
        apply_suggestions(fixed, moves)
        result["fixed_by"] = best
        result["fixed"] = {**train(args, project, package, fixed, work / "runs", f"{cell}-fixed", seed),
                           "moved": len(moves)}
    return result


def summarise(results: list[dict]) -> list[dict]:
    """Per dataset and noise level: mean recall of each method over seeds, and mean val accuracies."""
    cells: dict[tuple[str, float], list[dict]] = {}
    for result in results:
        cells.setdefault((result["dataset"], result["noise"]), []).append(result)
    rows = []
    for (dataset, noise), runs in cells.items():
        row: dict = {"dataset": dataset, "noise": noise, "seeds": len(runs), "flipped": runs[0]["flipped"]}
        for method in METHODS:
            if all(method in run["methods"] for run in runs):
                row[method] = round(statistics.mean(run["methods"][method]["recall"] for run in runs), 3)
        if "review" in row:  # the worst seed too: a user gets one folder, not the mean
            row["review worst"] = round(min(run["methods"]["review"]["recall"] for run in runs), 3)
        row["noisy_acc"] = round(statistics.mean(run["noisy"]["val_acc"] for run in runs), 3)
        if all("fixed" in run for run in runs):
            row["fixed_acc"] = round(statistics.mean(run["fixed"]["val_acc"] for run in runs), 3)
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    methods = [m for m in (*METHODS, "review worst") if any(m in row for row in rows)]
    lines = ["| data | noise | flipped | seeds | " + " | ".join(methods) + " | val acc noisy | val acc fixed |",
             "| --- | ---: | ---: | ---: | " + " | ".join("---:" for _ in methods) + " | ---: | ---: |"]
    for row in rows:
        cells = [f"{row[m]:.2f}" if m in row else "" for m in methods]
        fixed = f"{row['fixed_acc']:.3f}" if "fixed_acc" in row else ""
        lines.append(f"| {row['dataset']} | {row['noise']:.0%} | {row['flipped']} | {row['seeds']} | "
                     + " | ".join(cells) + f" | {row['noisy_acc']:.3f} | {fixed} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, required=True, help="local weights file of efficientnet_lite0")
    parser.add_argument("--datasets", default="digits,textures,faces", help="comma-separated names")
    parser.add_argument("--noise", default="0.05,0.1,0.2", help="comma-separated shares of flipped train photos")
    parser.add_argument("--seeds", default="0,1", help="comma-separated seeds")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--retrain", default="0.1", help="noise levels at which to retrain after fixing")
    parser.add_argument("--no-review", dest="review", action="store_false", help="skip the project's review")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "review.json")
    parser.add_argument("--keep", type=Path, help="keep data, logs and run folders here")
    args = parser.parse_args()
    args.weights = args.weights.resolve()
    args.retrain = [float(n) for n in args.retrain.split(",") if n]

    with tempfile.TemporaryDirectory(prefix="review-") as tmp:
        work = (args.keep or Path(tmp)).resolve()
        work.mkdir(parents=True, exist_ok=True)
        project, package = bake(work / "bake")
        modules = load_project(project, package)
        results = []
        for dataset in args.datasets.split(","):
            for noise in map(float, args.noise.split(",")):
                for seed in map(int, args.seeds.split(",")):
                    results.append(run_cell(args, work, project, package, modules, dataset, noise, seed))
                    print(json.dumps(results[-1]), flush=True)
        rows = summarise(results)
        print(markdown(rows))
        settings = {"backbone": "efficientnet_lite0", "weights": args.weights.name, "image_size": args.image_size,
                    "epochs": args.epochs, "probe_folds": PROBE_FOLDS, "cpu_cores": len(os.sched_getaffinity(0))}
        args.json.write_text(json.dumps({"settings": settings, "summary": rows, "runs": results}, indent=2) + "\n",
                             encoding="utf-8")


if __name__ == "__main__":
    main()
