"""The flags of ``review``; cli.py puts every command's flags together.

    {{ cookiecutter.project_slug }} review runs/<name>                        the page: keep, move or remove each suspect
    {{ cookiecutter.project_slug }} review runs/<name> --csv suspects.csv     the ranking as CSV, for scripts
    {{ cookiecutter.project_slug }} review runs/<name> --apply decisions.csv  apply path,action,class rows
    {{ cookiecutter.project_slug }} review --undo data/my-pets                put the last review's changes back

The run is loaded by ``load`` (``predict.load_classifier``, from cli.py); what runs is imported when it
runs, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

from {{ cookiecutter.package_name }}.errors import UsageError, UserError


def add_review(commands, load) -> None:
    parser = commands.add_parser(
        "review", help="find photos whose label is probably wrong, then keep, move or remove them",
        description="Score every train and val photo of a run with a model that did not see its label "
        "(cross-validated on the backbone's features, ranked by cleanlab), then show the suspects on a local "
        "page to keep, move to another class or remove. Nothing is deleted: removed photos go to "
        "DATA/.removed/<class>/, every change is logged in DATA/review-log.csv, and --undo puts them back. "
        "Needs: pip install -e .[review]",
    )
    parser.add_argument("run", metavar="RUN", nargs="?", help="the run folder to review (runs/<name>)")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--csv", metavar="FILE", help="write the ranking of every photo to FILE instead of the page")
    what.add_argument("--apply", metavar="FILE", help="apply a CSV of path,action,class (keep, move or remove)")
    what.add_argument("--undo", metavar="DATA_DIR", help="put back the last review's changes in DATA_DIR")
    parser.add_argument("--data", metavar="DIR", help="where the run's dataset is now, if it has moved")
    parser.add_argument("--features", default="start", choices=["start", "run"],
                        help="features from the run's starting weights (default; they never saw the labels) "
                        "or from its fine-tuned network")
    parser.add_argument("--port", type=int, default=7860, help="port of the page (default: 7860)")
    parser.add_argument("--accelerator", default="auto", choices=["auto", "cpu", "gpu", "mps"],
                        help="where to compute the features (default: auto)")
    parser.set_defaults(handler=functools.partial(run_review, load=load))


def run_review(args: argparse.Namespace, load) -> None:
    from {{ cookiecutter.package_name }}.review import changes

    if args.undo:
        if args.run:
            raise UsageError("review --undo takes the data folder only: review --undo data/my-pets")
        restored, notes = changes.undo_last_review(args.undo)
        for note in notes:
            print(f"Not restored: {note}")
        print(f"Put back {len(restored)} photo(s) in {args.undo}; logged in {Path(args.undo) / changes.REVIEW_LOG}.")
        return
    if not args.run:
        raise UsageError("review needs a run folder: review runs/<name> (or review --undo DATA_DIR)")
    from {{ cookiecutter.package_name }}.training.run_folder import RunFolder

    run = RunFolder(Path(args.run).expanduser())
    if not run.splits.is_file() or not run.labels.is_file():
        raise UserError(f"{run} is not a run folder made by train (it has no splits.csv or labels.json); "
                        "pass runs/<name>.")
    if args.apply:
        root = Path(args.data).expanduser() if args.data else run.data_folder()
        classes = json.loads(run.labels.read_text(encoding="utf-8"))
        done = changes.apply_decisions(root, changes.read_decisions(args.apply), classes, run.path.name)
        print(summary_line(done, root))
        return
    from {{ cookiecutter.package_name }}.review.page import check_options
    from {{ cookiecutter.package_name }}.review.scores import score_photos, write_ranking
    from {{ cookiecutter.package_name }}.sharing.extras import require

    require("cleanlab", "review")
    require("sklearn", "review")
    if not args.csv:
        check_options(args.port)  # before the minutes of scoring
    root, ranking = score_photos(run, load(args.run, args.accelerator), args.data, args.features)
    suspects = [photo for photo in ranking if photo.suspect]
    if args.csv:
        write_ranking(ranking, args.csv)
        print(f"Ranked {len(ranking)} photos, most suspicious first, in {args.csv}: "
              f"{len(suspects)} suspect(s) (column suspect = yes).")
        return
    from {{ cookiecutter.package_name }}.review.page import serve

    kept = changes.kept_photos(root)
    if kept & {photo.path for photo in suspects}:
        print(f"{len(kept & {p.path for p in suspects})} suspect(s) you kept in an earlier review are not shown "
              f"(see {root / changes.REVIEW_LOG}).")
    serve(root, [photo for photo in suspects if photo.path not in kept], run, port=args.port)


def summary_line(done: list, root: Path) -> str:
    """'Moved 2 photo(s), removed 1 ...' after a review was applied."""
    moved = sum(change.action == "move" for change in done)
    removed = len(done) - moved
    if not done:
        return "Nothing to change: every row says keep."
    return (f"Moved {moved} photo(s), removed {removed} (to {root / '.removed'}); logged in {root / 'review-log.csv'}. "
            f"Undo with: {{ cookiecutter.project_slug }} review --undo {root}")
