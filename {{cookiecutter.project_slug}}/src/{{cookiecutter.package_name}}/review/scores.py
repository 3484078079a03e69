"""Which photos of a run are probably in the wrong class folder, most suspicious first.

A network fine-tuned on a photo has learnt its label, wrong or not, so its own loss on that photo says
little. Each photo is scored instead by a model that never saw its label: the frozen backbone turns
every photo into features once (the last layer's and its last stages' averages, each averaged with its
mirror image's), then a linear head is trained on
four fifths of them and predicts the last fifth, five times over (k-fold cross-validation,
scikit-learn). cleanlab's confident learning turns those out-of-sample probabilities into a
label-quality score (low: suspicious) and flags the likely label errors. Photos that are the same
picture as one in another class (check-data's duplicates) are suspects too.

The features come from the weights the run started from (its pretrained backbone: ``features="start"``),
which never saw the labels, or from the run's fine-tuned network (``features="run"``), used when the
starting weights cannot be had (offline, or a run trained from scratch).
"""

from __future__ import annotations

import contextlib
import csv
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from {{ cookiecutter.package_name }}.dataset.duplicates import duplicate_problems
from {{ cookiecutter.package_name }}.dataset.folders import Sample
from {{ cookiecutter.package_name }}.dataset.image_dataset import ImageDataset
from {{ cookiecutter.package_name }}.dataset.parallel import check_images
from {{ cookiecutter.package_name }}.errors import UserError
from {{ cookiecutter.package_name }}.training.writing import write_csv

FOLDS = 5  # cross-validation folds: each photo is scored by a head trained on the other 80%
# The linear head's regularisation (scikit-learn's C: smaller is stronger). A few hundred photos against
# about a thousand features: a strongly held-back head trusts the many photos of a class over its few
# odd ones, and found more of the planted wrong labels than C=1 where this was measured.
HEAD_C = 0.05
SEED = 0
BATCH_SIZE = 64
STAGES = 3  # the backbone's last stages whose averaged feature maps join the final features
COLUMNS = ["path", "label", "suggested", "probability", "score", "reason", "suspect", "split"]


@dataclass
class Scored:
    """One photo of the run: where it is, its class, what the out-of-sample model says, and why it is suspect."""

    path: str  # relative to the data folder, as in splits.csv
    label: str
    split: str
    suggested: str = ""
    probability: float = 0.0  # of ``suggested``
    score: float = 1.0  # cleanlab's label quality: near 0 = the label is probably wrong
    reason: str = ""
    suspect: bool = False


def run_photos(run, data: str | Path | None = None) -> tuple[Path, list[Scored], int]:
    """The run's train and val photos (splits.csv; never test) that are still in the data folder, and how
    many of splits.csv's are gone (moved by a review since, or deleted)."""
    if not run.splits.is_file() or not run.config.is_file():
        raise UserError(f"{run} has no splits.csv or config.yaml; pass a run folder made by train (runs/<name>).")
    root = Path(data).expanduser() if data else run.data_folder()
    if not root.is_dir():
        raise UserError(f"the run's data folder {root} is not there; pass --data DIR where the photos are now.")
    photos, gone = [], 0
    with open(run.splits, newline="", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            if row["split"] in ("train", "val"):
                if (root / row["path"]).is_file():
                    photos.append(Scored(row["path"], row["class"], row["split"]))
                else:
                    gone += 1
    return root, photos, gone


def starting_network(run, classifier, build, say=print) -> tuple[torch.nn.Module, str]:
    """The backbone with the weights the run started from, or, when they cannot be had, the run's own
    fine-tuned network; and which it is, in words. ``build(settings, num_classes)`` makes the network with
    its starting weights and says where they came from (model/weights.py's ``starting_network``)."""
    settings = run.settings()
    if settings.get("weights") or settings.get("pretrained", True):
        try:
            network, source = build({**settings, "backbone": classifier.backbone}, len(classifier.class_names))
            return network.to(classifier.device).eval(), f"the starting weights ({source})"
        except UserError as err:
            why = str(err).split("; ")[0].split(". ")[0]  # what went wrong, without train's advice
            say(f"The run's starting weights cannot be loaded ({why}); using its fine-tuned network instead, "
                "which may have learnt some wrong labels by heart.")
    else:
        say("The run started from random weights; scoring with its fine-tuned network instead.")
    return fine_tuned_network(classifier), "the run's fine-tuned network"


def fine_tuned_network(classifier) -> torch.nn.Module:
    # predict's network may be wrapped to average mirrored views (model/network.py); features come from inside.
    return getattr(classifier.network, "network", classifier.network)


@torch.inference_mode()
def photo_features(network: torch.nn.Module, classifier, paths: list[Path], workers: int = 0,
                   mirror: bool = True) -> np.ndarray:
    """The backbone's features (the layer before the head) of each photo, prepared as validation does;
    with ``mirror``, averaged with those of the photo flipped left to right, as predict averages its answers
    (a run trained with flips: a photo and its mirror image are the same photo to it)."""
    dataset = ImageDataset([Sample(path, 0) for path in paths], classifier.transform, classifier.decode_size)
    rows = []
    for images, _, _ in DataLoader(dataset, batch_size=BATCH_SIZE, num_workers=workers):
        inputs = classifier.network_input(images)
        features = backbone_features(network, inputs)
        if mirror:
            features = (features + backbone_features(network, inputs.flip(3))) / 2
        rows.append(features.cpu())
    return torch.cat(rows).numpy()


def backbone_features(network: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """One pass through the backbone: the average of each of its last ``STAGES`` stages' feature maps
    (timm's ``forward_intermediates``; none for a model without it), then the layer before the head.

    The last layer's features describe ImageNet's objects; a wrong label on photos unlike those (scans,
    drawings, textures) shows better in the earlier stages' shapes and patterns.
    """
    final, maps = None, []
    if hasattr(network, "forward_intermediates"):
        with contextlib.suppress(NotImplementedError, TypeError, ValueError, AssertionError):
            final, maps = network.forward_intermediates(inputs, indices=STAGES)  # final: forward_features' output
    if final is None:
        final = network.forward_features(inputs)
    stages = [m.float().mean((2, 3)) if m.ndim == 4 else m.float().mean(1) for m in maps]
    return torch.cat([*stages, network.forward_head(final, pre_logits=True).float().flatten(1)], 1)


def out_of_sample_probabilities(features: np.ndarray, labels: np.ndarray, folds: int = FOLDS,
                                seed: int = SEED) -> np.ndarray:
    """Each photo's class probabilities from a linear head that did not see it (stratified k-fold)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # A class with fewer photos than folds is in only some of the training folds; scikit-learn gives
    # it probability 0 where it is missing, which is the honest answer for so few photos.
    folds = int(min(folds, np.bincount(labels).max()))
    head = make_pipeline(StandardScaler(), LogisticRegression(C=HEAD_C, max_iter=2000))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*least populated class.*")
        warnings.filterwarnings("ignore", message=".*[Nn]umber of classes in training fold.*")
        return cross_val_predict(head, features, labels, cv=splitter, method="predict_proba")


def rank_with_cleanlab(labels: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cleanlab's label-quality score of each photo (low: suspicious) and whether it flags it as a label error."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    scores = get_label_quality_scores(labels, probabilities)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)  # "no examples of class k": few photos
        flagged = find_label_issues(labels, probabilities, n_jobs=1)
    return scores, flagged


def duplicates_across_classes(root: Path, photos: list[Scored]) -> tuple[dict[str, list[str]], set[str]]:
    """check-data's duplicates, for review: path -> 'duplicate of <path> in class <c>' for every photo that
    is the same picture as one in another class; and the photos that cannot be decoded."""
    checks = check_images([root / p.path for p in photos], hashes=True, description="Reading photos")
    good = [check for check in checks if not check.problem]
    unreadable = {Path(check.path).relative_to(root).as_posix() for check in checks if check.problem}
    where = {str(root / p.path): (p.split, p.label) for p in photos}
    label = {p.path: p.label for p in photos}
    reasons: dict[str, list[str]] = {}
    for problem in duplicate_problems(good, where, root):
        if problem.kind.endswith("across classes"):
            for group in problem.groups:
                for path in group:
                    others = [f"duplicate of {other} in class {label[other]}" for other in group
                              if label[other] != label[path]]
                    reasons.setdefault(path, []).extend(others)
    return reasons, unreadable


def score_photos(run, classifier, build, data: str | Path | None = None, features: str = "start",
                 say=print) -> tuple[Path, list[Scored]]:
    """Every train and val photo of ``run``, most suspicious first (see the module docstring).

    ``classifier``: the run loaded by ``predict.load_classifier`` (its preprocessing and network).
    ``build``: makes the network with the run's starting weights (see ``starting_network``).
    ``features``: "start" (the starting weights; the run's network if they cannot be had) or "run".
    """
    root, photos, gone = run_photos(run, data)
    if gone:
        say(f"{gone} photo(s) of the run's splits.csv are no longer in {root} (moved by a review?); "
            "train again to score them.")
    duplicates, unreadable = duplicates_across_classes(root, photos)
    photos = [p for p in photos if p.path not in unreadable]
    # Only the classes that still have photos: scikit-learn and cleanlab number the classes they see.
    names = sorted({p.label for p in photos}, key=list(classifier.class_names).index)
    labels = np.array([names.index(p.label) for p in photos], dtype=int)
    if len(photos) < 4 or np.count_nonzero(np.bincount(labels) >= 2) < 2:
        raise UserError(f"too few photos left in {root} to review ({len(photos)}); "
                        "review needs at least 2 classes with 2 photos or more.")
    network, source = (starting_network(run, classifier, build, say) if features == "start"
                       else (fine_tuned_network(classifier), "the run's fine-tuned network"))
    say(f"Scoring {len(photos)} photos with features from {source}, cross-validated over {FOLDS} folds.")
    workers = 0 if len(photos) < 500 else min(4, max(0, (os.cpu_count() or 1) - 1))
    # Averaged with the mirror image's: the run learnt a photo and its mirror as one; found more flipped labels.
    mirror = bool(run.settings().get("flip", True))
    vectors = photo_features(network, classifier, [root / p.path for p in photos], workers, mirror)
    probabilities = out_of_sample_probabilities(vectors, labels)
    scores, flagged = rank_with_cleanlab(labels, probabilities)
    for photo, row, score, flag in zip(photos, probabilities, scores, flagged, strict=True):
        best = int(row.argmax())
        photo.suggested, photo.probability, photo.score = names[best], float(row[best]), float(score)
        reasons = [f"the model says {names[best]} ({row[best]:.0%}), not {photo.label}"] if flag else []
        photo.reason = "; ".join(reasons + duplicates.get(photo.path, []))
        photo.suspect = bool(photo.reason)
    return root, sorted(photos, key=lambda p: (p.score, p.path))


def write_ranking(photos: list[Scored], path: str | Path) -> Path:
    """The whole ranking as CSV, most suspicious first; written whole (temporary file, then renamed) or not at all."""
    target = Path(path).expanduser()
    write_csv(target, [COLUMNS] + [[p.path, p.label, p.suggested, f"{p.probability:.4f}", f"{p.score:.4f}", p.reason,
                                    "yes" if p.suspect else "no", p.split] for p in photos])
    return target

