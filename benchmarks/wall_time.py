"""How much of a training run's wall time is training? A Pets-sized folder, from process start to exit.

Bakes this template with its defaults, writes a folder the size of Oxford-IIIT Pet
(``tools/sample_data.py``: 37 classes, 3,700 JPEGs of 500x375, crops of real photos) and runs the
generated project's own ``train`` command in a new process, as a user runs it. Two clocks:

    start to exit   the process, from before it starts until it has exited
    fit             inside Lightning's ``fit`` (a callback added to ``train``; nothing else changes)

What is not fit is start-up (imports, CUDA, decoding the photos into the cache) before it, and the
final evaluation, the report and the exit after it. The target on a GPU: start to exit <= 1.3x fit.

    python benchmarks/wall_time.py --accelerator cuda             # resnet50 from scratch, 224 px, batch 128
    python benchmarks/wall_time.py --accelerator cuda --compile   # does --compile pay in a run this long?

The figures go to benchmarks/wall_time.json (``--json`` to choose); benchmarks/gpu.sh runs both.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def worker(src: str, clock: str, argv: list[str]) -> None:
    """In the timed process: the project's own command line, with one callback that clocks ``fit``."""
    import importlib

    sys.path.insert(0, src)
    (package,) = [p.name for p in Path(src).iterdir() if (p / "__init__.py").is_file()]
    import lightning as L

    train_module = importlib.import_module(f"{package}.train")
    times: dict[str, float] = {}

    class FitClock(L.Callback):
        def on_fit_start(self, trainer, pl_module) -> None:
            times["fit_start"] = time.time()

        def on_fit_end(self, trainer, pl_module) -> None:
            times["fit_end"] = time.time()
            Path(clock).write_text(json.dumps(times), encoding="utf-8")

    plain_train = train_module.train

    def train(cfg, resume=None, callbacks=()):
        return plain_train(cfg, resume, callbacks=[*callbacks, FitClock()])

    train_module.train = train  # the command imports it from there when it runs
    importlib.import_module(f"{package}.cli").main(argv)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accelerator", default="cuda")
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--per-class", type=int, default=100, help="photos per class (37 classes)")
    parser.add_argument("--compile", action="store_true", help="train with --compile")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "wall_time.json")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "tools"))
    from cookiecutter.main import cookiecutter
    from sample_data import write_pets_sized

    with tempfile.TemporaryDirectory(prefix="wall-time-") as tmp:
        tmp = Path(tmp)
        project = Path(cookiecutter(str(ROOT), no_input=True, output_dir=str(tmp / "bake")))
        started = time.perf_counter()
        data = write_pets_sized(tmp / "pets", per_class=args.per_class)
        print(f"Pets-sized folder written in {time.perf_counter() - started:.1f} s", flush=True)
        flags = ["train", "--data", str(data), "--accelerator", args.accelerator, "--backbone", args.backbone,
                 "--no-pretrained", "--image-size", str(args.image_size), "--batch-size", str(args.batch_size),
                 "--epochs", str(args.epochs), "--output", str(tmp / "runs"), "--name", "pets",
                 "--compile" if args.compile else "--no-compile"]
        clock = tmp / "clock.json"
        start = time.time()
        done = subprocess.run([sys.executable, __file__, "--worker", str(project / "src"), str(clock), *flags])
        end = time.time()
        if done.returncode != 0:
            raise SystemExit(f"train failed with exit code {done.returncode}")
        times = json.loads(clock.read_text(encoding="utf-8"))
        metrics = json.loads((tmp / "runs" / "pets" / "metrics.json").read_text(encoding="utf-8"))

    fit = times["fit_end"] - times["fit_start"]
    result = {
        "start_to_exit_s": round(end - start, 1), "fit_s": round(fit, 1),
        "start_to_exit/fit": round((end - start) / fit, 2),
        "before_fit_s": round(times["fit_start"] - start, 1), "after_fit_s": round(end - times["fit_end"], 1),
        "train_images_per_s": metrics.get("train_images_per_s"),
        "settings": {"accelerator": args.accelerator, "backbone": args.backbone, "image_size": args.image_size,
                     "batch_size": args.batch_size, "epochs": args.epochs, "compile": args.compile,
                     "photos": 37 * args.per_class, "date": datetime.date.today().isoformat()},
    }
    print(json.dumps(result, indent=2))
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:  # the timed process: --worker SRC CLOCK, then train's own arguments
        worker(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        main()
