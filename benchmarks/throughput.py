"""How close does the generated project's training come to the hardware's ceiling?

Bakes this template with its defaults (cookiecutter's Python API) into a temporary folder, imports
THAT generated project's code, writes a real image folder (scikit-learn's digits, no downloads) and
measures training images per second four ways, in one run, with the same model, batch size,
precision, threads and DataLoader settings:

    synthetic   train steps on random uint8 batches already on the device (augmented on the device
                like the others, so only the loading is missing): the ceiling
    loader      the project's train DataLoader alone, batches moved to the device
    plain_loop  a hand-written PyTorch loop (normalise, forward, backward, step) over that DataLoader
    template    the project's own ``train`` (Lightning), steady state: its unfrozen epochs

Each figure is the mean of a few epochs (or rounds), after one that only warms up. On a GPU the
three others take turns with whole epochs before the template's run. On a CPU they run side by side
with it: after every step of the template's unfrozen epochs, one synthetic and one plain-loop step
(``PairedSteps``), each clocked, so that all three meet a shared machine in the same state (taking
turns by the epoch, a spell of other work moved a ratio by 5-10% from run to run). The best epoch of
each and the median single step are reported as well.

The ratios template/synthetic and template/plain_loop are the point: they hold across machines
when absolute times do not. Run it, e.g. on 2 CPU cores or on a GPU:

    taskset -c 0,1 python benchmarks/throughput.py --device cpu
    python benchmarks/throughput.py --device cuda --backbone resnet50 --image-size 224 --batch-size 128

The figures go to benchmarks/throughput-cpu.json (or -cuda.json; ``--json`` to choose): the latest
run under one name, git keeps the earlier ones. benchmarks/gpu.sh runs every GPU row in one command.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import importlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))  # sample_data.py: the images, built offline

from sample_data import write_digits  # noqa: E402


def bake(out: Path) -> Path:
    """Generate a project from this template with every default; returns its folder."""
    from cookiecutter.main import cookiecutter

    return Path(cookiecutter(str(ROOT), no_input=True, output_dir=str(out), overwrite_if_exists=True))


def import_project(project: Path):
    """Import the generated package from its src/ folder (not from anything installed)."""
    src = project / "src"
    (package,) = [p.name for p in src.iterdir() if (p / "__init__.py").is_file()]
    sys.path.insert(0, str(src))
    modules = {"cache": "dataset.cache", "backbones": "model.network", "config": "config", "data": "data",
               "device": "device", "folders": "dataset.folders", "train": "train"}
    return {name: importlib.import_module(f"{package}.{module}") for name, module in modules.items()}


def sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def autocast(device: str, precision: str):
    """The same mixed precision Lightning uses for ``precision`` (nothing for 32)."""
    import torch

    if precision == "32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision.startswith("bf16") else torch.float16
    return torch.autocast(device_type=device, dtype=dtype)


class PlainTrainer:
    """The textbook PyTorch training step, with the project's optimiser, loss and normalisation."""

    def __init__(self, project, num_classes: int, args, plan, data_config):
        import torch

        torch.manual_seed(0)
        network = project["backbones"].build_network(args.backbone, num_classes)
        self.device = plan.accelerator
        self.precision = plan.precision
        self.network = network.to(self.device)
        if plan.channels_last:
            self.network = self.network.to(memory_format=torch.channels_last)
        self.channels_last = plan.channels_last
        self.network.train()
        if plan.compile:  # the project's rule: CUDA only
            self.network = torch.compile(self.network)
        self.optimizer = torch.optim.AdamW(self.network.parameters(), lr=1e-4, weight_decay=0.01)
        self.scaler = torch.amp.GradScaler(enabled=plan.precision == "16-mixed")
        self.mean = torch.tensor(data_config["mean"], device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(data_config["std"], device=self.device).view(1, 3, 1, 1)
        self.to_float = project["data"].images_to_float
        # The template's random crop, flip and colour jitter, on the device as in its training step.
        self.augment = project["data"].train_augmentation(data_config)
        # Training batches are the cached squares, a little bigger than the crops made from them.
        self.side = project["cache"].cache_side(data_config["input_size"][-1], data_config["crop_pct"])

    def step(self, images, labels, clock: list[float] | None = None) -> None:
        """One training step. ``clock`` (step_phases.py) gets the time after augmentation, forward and
        backward: on a CPU each is finished when its call returns."""
        import torch
        import torch.nn.functional as F

        mark = clock.append if clock is not None else lambda _: None
        images = self.to_float(images, self.mean, self.std, augment=self.augment)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        mark(time.perf_counter())
        with autocast(self.device, self.precision):
            loss = F.cross_entropy(self.network(images), labels, label_smoothing=0.1)
        mark(time.perf_counter())
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        mark(time.perf_counter())
        self.scaler.step(self.optimizer)
        self.scaler.update()


def plain_setup(project, data: Path, args, plan):
    """The project's splits and DataModule (set up: images decoded) for ``data``, and a PlainTrainer."""
    splits = project["folders"].find_dataset(data, 0.1, 42)
    network = project["backbones"].build_network(args.backbone, len(splits.classes))
    data_config = project["backbones"].model_data_config(network, args.image_size)
    datamodule = project["data"].ImageFolderDataModule(splits, data_config, args.batch_size, plan.num_workers,
                                                       plan.pin_memory)
    datamodule.setup("fit")
    return splits, datamodule, PlainTrainer(project, len(splits.classes), args, plan, data_config)


def measure_synthetic(trainer: PlainTrainer, batch: int, num_classes: int, steps: int) -> float:
    """Images/s of ``steps`` training steps on one random batch (of the loader's shape) kept on the device."""
    import torch

    generator = torch.Generator().manual_seed(0)
    shape = (batch, 3, trainer.side, trainer.side)
    images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator).to(trainer.device)
    labels = torch.randint(0, num_classes, (batch,), generator=generator).to(trainer.device)
    sync(trainer.device)
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step(images, labels)
    sync(trainer.device)
    return steps * batch / (time.perf_counter() - start)


def timed_epoch(loader, device: str, step=None) -> float:
    """Images/s of one pass over ``loader``, clocked like the project's ImagesPerSecond callback:
    from the start of the epoch to the end of its last batch."""
    images_seen = 0
    start = time.perf_counter()
    for images, labels, _ in loader:
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        if step is not None:
            step(images, labels)
        images_seen += len(labels)
    sync(device)
    return images_seen / (time.perf_counter() - start)


class PairedSteps:
    """On a CPU: after each of the template's steps, one synthetic step and one plain-loop step, each
    clocked (loading included), so that the three always meet the machine in the same state.

    On a shared 2-core VM the speed of identical steps drifts by +-15% in spells of several seconds;
    epochs taken in turns (the GPU path) each land in a different spell, so a ratio moved by 5-10% from
    run to run. Steps taken side by side share every spell. Seconds and images of each step, per epoch.

    The synthetic steps train their own copy of the plain loop's network: each of the three steps then
    follows another network's, and none finds its weights still in the CPU's caches (with one shared
    network, the plain loop ran 2-4% faster than its own ceiling).
    """

    def __init__(self, trainer: PlainTrainer, loader, batch: int, num_classes: int):
        import torch

        self.trainer, self.loader = trainer, loader
        self.synthetic = copy.deepcopy(trainer)  # network, optimiser and augmentation of its own
        generator = torch.Generator().manual_seed(0)
        self.images = torch.randint(0, 256, (batch, 3, trainer.side, trainer.side), dtype=torch.uint8,
                                    generator=generator)
        self.labels = torch.randint(0, num_classes, (batch,), generator=generator)
        self.batches = iter(loader)
        self.steps: dict[str, list[list[tuple[float, int]]]] = {"synthetic": [], "plain_loop": [], "template": []}

    def new_epoch(self) -> None:
        for epochs in self.steps.values():
            epochs.append([])

    def record(self, key: str, seconds: float, images: int) -> None:
        self.steps[key][-1].append((seconds, images))

    def others(self) -> None:
        """One synthetic step, then one plain-loop step on the next batch of the project's DataLoader."""
        start = time.perf_counter()
        self.synthetic.step(self.images, self.labels)
        middle = time.perf_counter()
        self.record("synthetic", middle - start, len(self.labels))
        batch, restarted = next(self.batches, None), False
        if batch is None:  # a new pass over the data: this step also starts the iterator, so it is not clocked
            self.batches, restarted = iter(self.loader), True
            batch = next(self.batches)
        self.trainer.step(batch[0], batch[1])
        if not restarted:
            self.record("plain_loop", time.perf_counter() - middle, len(batch[1]))

    def rates(self) -> dict[str, list[float]]:
        """Images/s of each epoch, per measurement."""
        return {key: [sum(n for _, n in steps) / sum(t for t, _ in steps) for steps in epochs if steps]
                for key, epochs in self.steps.items()}

    def median_step_ms(self) -> dict[str, float]:
        return {key: round(1000 * statistics.median(t for steps in epochs[1:] for t, _ in steps), 1)
                for key, epochs in self.steps.items()}


def measure_template(project, data: Path, out: Path, args, paired: PairedSteps | None = None
                     ) -> tuple[list[float], dict]:
    """The project's own ``train``, as a user runs it: the frozen epoch, then full epochs; each epoch's
    images/s, as the project's ImagesPerSecond callback logged them to TensorBoard. With ``paired``
    (on a CPU), every unfrozen step is clocked and followed by a synthetic and a plain-loop step."""
    import lightning as L
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    class SideBySide(L.Callback):
        """After each unfrozen training step: its time, then the other two measurements' steps."""

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
            now = time.perf_counter()
            if not pl_module.backbone_frozen:
                if batch_idx == 0:
                    paired.new_epoch()  # its first step follows validation and the checkpoint: not clocked
                else:
                    paired.record("template", now - self.last, len(batch[1]))
                paired.others()
            self.last = time.perf_counter()  # the template's next step is clocked from here

    cfg = project["config"].make_config({
        "data": str(data), "backbone": args.backbone, "pretrained": False, "image_size": args.image_size,
        "batch_size": args.batch_size, "epochs": args.epochs, "freeze_epochs": 1, "accelerator": args.device,
        "num_workers": args.num_workers, "output": str(out), "name": "benchmark", "val_fraction": 0.1,
        "compile": args.compile,
    })
    run = project["train"].train(cfg, callbacks=[SideBySide()] if paired is not None else [])
    metrics = json.loads(run.metrics.read_text(encoding="utf-8"))
    rates = []
    for events in sorted(run.path.rglob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events)).Reload()
        if "train/images_per_s" in accumulator.Tags()["scalars"]:
            rates += [event.value for event in accumulator.Scalars("train/images_per_s")]
    return rates, metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--per-class", type=int, default=None,
                        help="digits per class (default: 80 on CPU, 20 steps an epoch; all ~180 on CUDA)")
    parser.add_argument("--copies", type=int, default=None,
                        help="write each digit this many times, so epochs on a fast GPU last long enough "
                        "(default: 1 on CPU, 4 on CUDA: about 7,000 images, still small enough to cache)")
    parser.add_argument("--steps", type=int, help="steps a synthetic round, on a GPU (default: batches in an epoch)")
    parser.add_argument("--epochs", type=int, default=6,
                        help="the template's epochs (the first trains only the head), and the GPU's turns of "
                        "the other three; the first of each (on a CPU: the first unfrozen) warms up")
    parser.add_argument("--num-workers", default="auto")
    parser.add_argument("--compile", action="store_true", help="torch.compile the network in all four")
    parser.add_argument("--json", type=Path, help="write the figures and settings here "
                        "(default: benchmarks/throughput-DEVICE.json)")
    args = parser.parse_args()
    cuda = args.device == "cuda"
    per_class = args.per_class or (None if cuda else 80)
    copies = args.copies or (4 if cuda else 1)

    with tempfile.TemporaryDirectory(prefix="throughput-") as tmp:
        tmp = Path(tmp)
        project = import_project(bake(tmp / "bake"))
        import torch

        data = write_digits(tmp / "digits", size=2 * args.image_size, per_class=per_class)
        if copies > 1:
            for image in list((data / "train").rglob("*.png")):
                for copy in range(1, copies):
                    (image.parent / f"{image.stem}_{copy}.png").write_bytes(image.read_bytes())

        plan = project["device"].choose_device(args.device, "auto", args.num_workers, compile=args.compile)
        torch.set_num_threads(plan.threads)
        print(plan.description)
        splits, datamodule, trainer = plain_setup(project, data, args, plan)
        num_classes = len(splits.classes)
        loader = datamodule.train_dataloader()

        rates: dict[str, list[float]] = {"synthetic": [], "loader": [], "plain_loop": []}
        paired = None
        if cuda:
            # On a GPU the host runs ahead of the device, so only whole rounds can be clocked: the three
            # take turns, a synthetic round as many steps as an epoch has batches. The first only warms up.
            steps = args.steps or len(loader)
            for turn in range(args.epochs):
                print(f"turn {turn + 1}: synthetic, loader, plain_loop ...", flush=True)
                rates["synthetic"].append(measure_synthetic(trainer, args.batch_size, num_classes, steps))
                rates["loader"].append(timed_epoch(loader, plan.accelerator))
                rates["plain_loop"].append(timed_epoch(loader, plan.accelerator, step=trainer.step))
            peak_synthetic = torch.cuda.max_memory_allocated() / 2**30
            del loader, datamodule, trainer  # free the GPU (and the loader's workers) for the template's run
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        else:
            rates["loader"] = [timed_epoch(loader, plan.accelerator) for _ in range(args.epochs)]
            paired = PairedSteps(trainer, loader, args.batch_size, num_classes)
        print("template: the project's own train command ...", flush=True)
        rates["template"], metrics = measure_template(project, data, tmp / "runs", args, paired)
        if paired is not None:  # every step side by side with a synthetic and a plain-loop one (see PairedSteps)
            rates.update(paired.rates())
        # The first of each only warms up (the template's: its first unfrozen epoch on a CPU, its frozen
        # epoch on a GPU, where its rates are the project's own ImagesPerSecond figures); the mean of the rest counts.
        figures = {key: statistics.mean(values[1:]) for key, values in rates.items()}

        result = {key: round(figures[key], 1) for key in ("synthetic", "loader", "plain_loop", "template")}
        result["template/synthetic"] = round(figures["template"] / figures["synthetic"], 3)
        result["template/plain_loop"] = round(figures["template"] / figures["plain_loop"], 3)
        result["best_epoch"] = {key: round(max(values[1:]), 1) for key, values in rates.items()}
        result["samples"] = {key: [round(value, 1) for value in values] for key, values in rates.items()}
        if paired is not None:
            median = paired.median_step_ms()
            result["median_step_ms"] = median
            result["median_step"] = {
                "template/synthetic": round(median["synthetic"] / median["template"], 3),
                "template/plain_loop": round(median["plain_loop"] / median["template"], 3),
            }
        result["settings"] = {
            "device": args.device,
            "device_name": torch.cuda.get_device_name(0) if cuda else "CPU",
            "backbone": args.backbone, "image_size": args.image_size, "batch_size": args.batch_size,
            "precision": plan.precision, "threads": torch.get_num_threads(), "num_workers": plan.num_workers,
            "channels_last": plan.channels_last, "train_images": len(splits.train), "compile": plan.compile,
            "torch": torch.__version__, "date": datetime.date.today().isoformat(),
        }
        if cuda:
            result["settings"]["gpu_peak_memory_gib"] = {
                "synthetic": round(peak_synthetic, 2), "template": round(torch.cuda.max_memory_allocated() / 2**30, 2),
            }

    print(json.dumps(result, indent=2))
    out = args.json or ROOT / "benchmarks" / f"throughput-{args.device}.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
