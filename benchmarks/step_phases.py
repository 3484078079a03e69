"""Where does a training step's time go: the template's step against the plain loop's, phase by phase.

throughput.py says whether the template keeps up with a hand-written loop; this says where it loses
when it does not. In one process, on the same digits folder, model, batch and threads:

    plain loop   data (fetch + augmentation), forward (+ loss), backward, optimiser step
    template     data + callbacks (from one step's end to the next step's start: fetching, the
                 device augmentation, every callback's per-step hooks), forward (training_step up to
                 the backward), backward, optimiser step (+ zero_grad, scheduler, logging)

The plain loop runs before and after the template, so a change in the machine shows as a difference
between its two rows. Medians of the unfrozen steps, in milliseconds:

    taskset -c 0,1 python benchmarks/step_phases.py
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))  # sample_data.py: the images, built offline

import throughput  # noqa: E402
from sample_data import write_digits  # noqa: E402


def medians(phases: dict[str, list[float]]) -> str:
    return ", ".join(f"{name} {1000 * statistics.median(times):.1f}" for name, times in phases.items() if times)


def plain_loop(project, data: Path, args, epochs: int) -> dict[str, list[float]]:
    """throughput.py's plain loop (PlainTrainer) over the project's DataLoader, each phase clocked."""
    plan = project["device"].choose_device("cpu", "auto", "auto")
    _, datamodule, trainer = throughput.plain_setup(project, data, args, plan)
    phases: dict[str, list[float]] = {"data": [], "forward": [], "backward": [], "optimiser": []}
    for _ in range(epochs):
        clock = [time.perf_counter()]
        for images, labels, _ in datamodule.train_dataloader():
            trainer.step(images, labels, clock)
            clock.append(time.perf_counter())
            for name, (start, end) in zip(phases, itertools.pairwise(clock), strict=True):
                phases[name].append(end - start)
            clock = [time.perf_counter()]
    return phases


def template(project, data: Path, out: Path, args) -> dict[str, list[float]]:
    """The project's own ``train``, with a callback that clocks Lightning's hooks around each step."""
    import lightning as L

    phases: dict[str, list[float]] = {"data + callbacks": [], "forward": [], "backward": [], "optimiser": []}

    class Clock(L.Callback):
        end = None

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
            self.start = time.perf_counter()
            if self.end is not None and not pl_module.backbone_frozen and batch_idx > 0:
                phases["data + callbacks"].append(self.start - self.end)

        def on_before_backward(self, trainer, pl_module, loss) -> None:
            self.backward = time.perf_counter()

        def on_after_backward(self, trainer, pl_module) -> None:
            self.optimiser = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
            now = time.perf_counter()
            if not pl_module.backbone_frozen:
                phases["forward"].append(self.backward - self.start)
                phases["backward"].append(self.optimiser - self.backward)
                phases["optimiser"].append(now - self.optimiser)
            self.end = time.perf_counter()

    cfg = project["config"].make_config({
        "data": str(data), "backbone": args.backbone, "pretrained": False, "image_size": args.image_size,
        "batch_size": args.batch_size, "epochs": args.epochs, "freeze_epochs": 1, "accelerator": "cpu",
        "output": str(out), "name": "phases", "val_fraction": 0.1,
    })
    project["train"].train(cfg, callbacks=[Clock()])
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--per-class", type=int, default=40, help="digits per class")
    parser.add_argument("--epochs", type=int, default=4, help="template epochs (the first is frozen)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="phases-") as tmp:
        tmp = Path(tmp)
        project = throughput.import_project(throughput.bake(tmp / "bake"))
        data = write_digits(tmp / "digits", size=2 * args.image_size, per_class=args.per_class)
        before = plain_loop(project, data, args, args.epochs - 1)
        ours = template(project, data, tmp / "runs", args)
        after = plain_loop(project, data, args, args.epochs - 1)
    print(f"plain loop, before (ms): {medians(before)}")
    print(f"template (ms):           {medians(ours)}")
    print(f"plain loop, after (ms):  {medians(after)}")


if __name__ == "__main__":
    main()
