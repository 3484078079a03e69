"""The network and how it learns.

``create_backbone`` builds any timm model with a fresh head sized for your classes, starting from
pretrained weights (downloaded by name, or a local file). ``Classifier`` is the LightningModule:
it normalises batches on the device, then fine-tunes in two phases:

1. Head only (``freeze_epochs``): the pretrained backbone is frozen and only computes features; at
   the end the new head is fitted to all of them with many quick steps (a "linear probe").
2. Everything (the other epochs): backbone and head learn together, at the same learning rate.

``benchmarks/recipe.py`` in the template measured every choice here against fastai's ``fine_tune``.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import lightning as L
import timm
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from {{ cookiecutter.package_name }}.data import images_to_float, train_augmentation
from {{ cookiecutter.package_name }}.errors import NoPretrainedWeights, UserError

PROJECT = "{{ cookiecutter.package_name }}"  # stored in checkpoints so another project's are refused

# Full-batch steps that fit the new head to the frozen backbone's features before the backbone thaws.
# One head-only epoch of a small dataset is only a handful of steps (5 for 160 photos), far too few for
# a new layer; on stored features 200 steps take well under a second.
HEAD_FIT_STEPS = 200


def check_backbone_name(name: str) -> None:
    """Fail with close suggestions when timm does not know ``name``."""
    if timm.is_model(name):
        return
    close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(close)}?" if close else " See timm.list_models() for the names."
    raise UserError(f"timm has no model called '{name}'.{hint}")


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Can we open a connection to the Hugging Face Hub? A few seconds at most, no retries."""
    from huggingface_hub import constants

    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def build_network(name: str, num_classes: int, image_size: int | None = None, pretrained: bool = False) -> nn.Module:
    """``timm.create_model``, built for ``image_size`` where the architecture needs to know it.

    Vision transformers cut images into a fixed grid of patches, so they are built for one input size
    (timm adapts pretrained weights to it); CNNs take any size and have no such argument.
    """
    if image_size is not None:
        try:
            return timm.create_model(name, pretrained=pretrained, num_classes=num_classes, img_size=image_size)
        except TypeError:  # "unexpected keyword argument 'img_size'": a CNN
            pass
    return timm.create_model(name, pretrained=pretrained, num_classes=num_classes)


def _pretrained_by_name(name: str, num_classes: int, image_size: int | None) -> nn.Module:
    """timm's pretrained weights, downloaded once and cached; fails fast and clearly when offline."""
    from huggingface_hub import constants

    if not constants.HF_HUB_OFFLINE and not _hub_reachable():
        # Without a network the hub client retries for about a minute before failing.
        # Offline mode makes it use the local cache at once (and fail at once if it is empty).
        constants.HF_HUB_OFFLINE = True
    try:
        return build_network(name, num_classes, image_size, pretrained=True)
    except Exception as err:
        reason = "no internet connection and they are not in the cache" if constants.HF_HUB_OFFLINE else str(err)
        raise NoPretrainedWeights(
            f"could not get pretrained weights for '{name}' ({reason.splitlines()[0]}). "
            "Use --weights FILE with a local .pth/.safetensors file, or --no-pretrained to train from scratch."
        ) from None


def _load_weights_file(model: nn.Module, path: str) -> None:
    """Copy a local weights file into ``model``'s backbone; the classifier head stays new."""
    from timm.models import load_state_dict

    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(f"weights file {file} does not exist; check the path given to --weights.")
    try:
        state = load_state_dict(str(file), use_ema=False)
    except Exception as err:
        raise UserError(
            f"could not read weights file {file} ({type(err).__name__}); use a .pth or .safetensors file."
        ) from None

    # timm's own conversion for this architecture, e.g. a vision transformer's position table resized
    # to our image size. Architectures without one take the file as it is.
    convert = getattr(sys.modules[type(model).__module__], "checkpoint_filter_fn", None)
    if convert is not None:
        # A file not in the format it converts is taken as it is; the shape check below explains any mismatch.
        with contextlib.suppress(Exception):
            state = convert(state, model)

    own = model.state_dict()
    for prefix in ("model.", "backbone."):  # a checkpoint of a LightningModule that wraps the model
        if not (state.keys() & own.keys()) and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    head = {name for name in own if name.startswith(_classifier_prefix(model))}
    usable = {k: v for k, v in state.items() if k in own and k not in head and v.shape == own[k].shape}
    missing = [k for k in own if k not in head and k not in usable and not k.endswith("num_batches_tracked")]
    if missing:
        raise UserError(
            f"weights file {file} does not fit backbone '{model.pretrained_cfg.get('architecture')}' "
            f"({len(missing)} of {len(own)} tensors missing or of another shape, e.g. {missing[0]}); "
            "use weights saved from the same model, or pass the matching --backbone."
        )
    model.load_state_dict(usable, strict=False)


def _classifier_prefix(model: nn.Module) -> str:
    """State-dict prefix of the classifier layer, e.g. 'classifier.' or 'head.fc.'."""
    classifier = model.get_classifier()
    for name, module in model.named_modules():
        if module is classifier:
            return name + "."
    raise RuntimeError("timm model has no classifier layer")


def weights_source(name: str, pretrained: bool = True, weights: str | None = None) -> str:
    """Where the starting weights come from, in words (saved in the checkpoint and metrics.json)."""
    if weights:
        return f"file:{Path(weights).expanduser().resolve()}"
    return f"timm:{name}" if pretrained else "none (random init)"


def create_backbone(
    name: str, num_classes: int, pretrained: bool = True, weights: str | None = None, image_size: int | None = None
) -> tuple[nn.Module, str]:
    """Build ``name`` with a new ``num_classes`` head. Returns the model and where its weights came from."""
    check_backbone_name(name)
    if weights:
        model = build_network(name, num_classes, image_size)
        _load_weights_file(model, weights)
    elif pretrained:
        if not timm.list_pretrained(name if "." in name else name + ".*"):
            raise UserError(
                f"timm has no pretrained weights for '{name}'; pick another backbone or use --no-pretrained."
            )
        model = _pretrained_by_name(name, num_classes, image_size)
    else:
        model = build_network(name, num_classes, image_size)
    return model, weights_source(name, pretrained, weights)


def model_data_config(model: nn.Module, image_size: int) -> dict[str, Any]:
    """Preprocessing the backbone was pretrained with (mean, std, interpolation, crop) at our size."""
    config = timm.data.resolve_model_data_config(model)
    config["input_size"] = (3, image_size, image_size)
    return {key: list(value) if isinstance(value, tuple) else value for key, value in config.items()}


def lr_schedule(total_steps: int, freeze_steps: int, warmup_fraction: float):
    """Learning-rate multiplier per step: warm-up then cosine decay, restarted when the backbone thaws.

    The frozen phase and the fine-tuning phase each get their own warm-up, like fastai's ``fine_tune``.
    """
    phases = [(0, freeze_steps), (freeze_steps, total_steps - freeze_steps)]

    def factor(step: int) -> float:
        start, length = phases[0] if step < freeze_steps else phases[1]
        position, length = step - start, max(1, length)
        warmup = max(1, round(warmup_fraction * length))
        if position < warmup:
            return (position + 1) / warmup
        progress = min(1.0, (position - warmup) / max(1, length - warmup))
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def gather_predictions(module: L.LightningModule, results: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """With several processes each validates a share of the images: collect every share, so the
    reports see the whole val set. Lightning's sampler repeats a few images to give every process
    the same number; each image is kept once, in dataset order."""
    gathered = {k: v.reshape(-1, *v.shape[2:]) for k, v in module.all_gather(results).items()}
    order = torch.argsort(gathered["indices"], stable=True)
    indices = gathered["indices"][order]
    first = torch.ones_like(indices, dtype=torch.bool)
    first[1:] = indices[1:] != indices[:-1]
    return {k: v[order][first] for k, v in gathered.items()}


class Classifier(L.LightningModule):
    """A timm backbone with a new head, trained with the fine-tuning recipe described above."""

    def __init__(self, model: nn.Module, backbone: str, class_names: list[str], data_config: dict[str, Any],
                 lr: float = 2e-3, backbone_lr_factor: float = 1.0, weight_decay: float = 0.01,
                 warmup_fraction: float = 0.1, label_smoothing: float = 0.1, freeze_epochs: int = 1,
                 pretrained_source: str = "none", project: str = PROJECT,
                 class_weights: list[float] | None = None):
        super().__init__()
        # Everything except the network itself goes into the checkpoint, so predict/export can rebuild it.
        self.save_hyperparameters(ignore=["model"])
        self.model = model
        self.channels_last = False  # set by train.py when the device plan asks for it
        self.augment = train_augmentation(data_config)  # random crop, flip, colour jitter (a plain object, see data.py)
        num_classes = len(class_names)
        self.register_buffer("mean", torch.tensor(data_config["mean"]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(data_config["std"]).view(1, 3, 1, 1), persistent=False)
        # --balance weighted-loss: rare classes weigh more in the training loss (None: all equal).
        weights = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.register_buffer("class_weights", weights, persistent=False)
        # validate_args=False: our labels are always valid, and the checks would make the CPU wait for the GPU.
        metric_args = {"num_classes": num_classes, "validate_args": False}
        self.train_acc = MulticlassAccuracy(average="micro", **metric_args)
        self.val_acc = MulticlassAccuracy(average="micro", **metric_args)
        self.val_f1 = MulticlassF1Score(average="macro", **metric_args)
        self.test_acc = MulticlassAccuracy(average="micro", **metric_args)
        self.test_f1 = MulticlassF1Score(average="macro", **metric_args)
        self.backbone_frozen = freeze_epochs > 0
        self.frozen_features: list[tuple[torch.Tensor, torch.Tensor]] = []  # (features, labels) of head-only epochs
        self._val_outputs: list[dict[str, torch.Tensor]] = []
        self.val_results: dict[str, torch.Tensor] = {}  # last validation pass: probs, targets, losses, indices

    # ---- the network -------------------------------------------------------------------------
    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.model.get_classifier().parameters())

    def backbone_parameters(self) -> list[nn.Parameter]:
        head = {id(p) for p in self.head_parameters()}
        return [p for p in self.model.parameters() if id(p) not in head]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised images -> class logits."""
        return self.model(images)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """Called by Lightning once a batch is on the device: uint8 -> normalised float there.

        Training batches are also randomly cropped, flipped and colour-jittered here, every image
        differently: on the device this costs a fraction of a step, in loader workers it was the bottleneck.
        """
        images, labels, indices = batch
        training = self._trainer is not None and self.trainer.training
        images = images_to_float(images, self.mean, self.std, augment=self.augment if training else None)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images, labels, indices

    # ---- training ----------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        """Called by Lightning when fit starts (the LR finder's trial fit included): no stale features."""
        self.frozen_features = []

    def on_train_start(self) -> None:
        """Called by Lightning once the training batches are known: how fast BatchNorm statistics follow.

        BatchNorm layers keep running averages of their inputs for evaluation. PyTorch's default updates
        them by 10% a step, so with few steps an epoch the ImageNet statistics never wash out (on 180
        photos, 5 steps an epoch, validation fell from 92% to 62% while training accuracy rose; the same
        weights with re-measured statistics scored 92%). Here they are 99% renewed every epoch.
        """
        steps = max(1, int(self.trainer.num_training_batches))
        momentum = max(0.1, 1 - 0.01 ** (1 / steps))
        for module in self.model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.momentum = momentum

    def on_train_epoch_start(self) -> None:
        """Called by Lightning at the start of every training epoch: freeze or thaw the backbone."""
        self.backbone_frozen = self.current_epoch < self.hparams.freeze_epochs
        if not self.backbone_frozen and self.frozen_features:
            self.fit_head()  # the head-only phase is over: fit the head to what it saw before thawing
        for parameter in self.backbone_parameters():
            parameter.requires_grad_(not self.backbone_frozen)
        # A frozen backbone also keeps its BatchNorm statistics: eval mode stops them drifting. (Letting
        # them adapt to your photos in this phase, or training them as fastai does, measured no better.)
        self.model.train(not self.backbone_frozen)
        self.model.get_classifier().train()

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        """Called by Lightning for every training batch; returns the loss to minimise."""
        images, labels, _ = batch
        if self.backbone_frozen:
            # Head only: the backbone computes features without building a graph, and they are kept
            # for fit_head, which fits the head to all of them at the end of this phase.
            with torch.no_grad():
                features = self.model.forward_head(self.model.forward_features(images), pre_logits=True)
            self.frozen_features.append((features, labels))
            logits = self.model.get_classifier()(features)
        else:
            logits = self(images)
        loss = self.loss(logits, labels)
        # update() only: the epoch's value is what we log, so no per-batch value is computed. Accuracy
        # alone: report.md compares it with val/acc; a training F1 as well cost work at every step.
        self.train_acc.update(logits, labels)
        # Not in the progress bar: showing a per-step value there makes the CPU wait for the GPU every step.
        self.log("train/loss", loss, on_step=True, on_epoch=True, batch_size=len(labels))
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True)
        return loss

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The training loss: cross-entropy, softened targets, rare classes weighted up (--balance)."""
        return F.cross_entropy(logits, labels, weight=self.class_weights, label_smoothing=self.hparams.label_smoothing)

    def fit_head(self) -> None:
        """Fit the new head to the frozen backbone's features of the head-only epochs (a linear probe).

        A well-fitted head before the backbone thaws means the first fine-tuning steps improve features
        instead of undoing them to fix a random head ("LP-FT", Kumar et al., 2022). With several
        processes each fits on every process's features, so all of them end with the same head.
        """
        features = torch.cat([f for f, _ in self.frozen_features])
        labels = torch.cat([y for _, y in self.frozen_features])
        self.frozen_features = []
        if self._trainer is not None and self.trainer.world_size > 1:
            features = self.all_gather(features).flatten(0, 1)
            labels = self.all_gather(labels).flatten(0, 1)
        head = self.model.get_classifier()
        optimizer = torch.optim.AdamW(head.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        with torch.enable_grad():
            for _ in range(HEAD_FIT_STEPS):
                optimizer.zero_grad()
                self.loss(head(features.float()), labels).backward()
                optimizer.step()

    # ---- evaluation --------------------------------------------------------------------------
    def _evaluate(self, batch, stage: str, accuracy, f1) -> torch.Tensor:
        images, labels, indices = batch
        logits = self(images)
        losses = F.cross_entropy(logits, labels, reduction="none")
        accuracy(logits, labels)
        f1(logits, labels)
        self.log(f"{stage}/loss", losses.mean(), on_epoch=True, batch_size=len(labels), sync_dist=True)
        self.log(f"{stage}/acc", accuracy, on_epoch=True, prog_bar=stage == "val")
        self.log(f"{stage}/f1_macro", f1, on_epoch=True, prog_bar=stage == "val")
        return logits, losses, labels, indices

    def on_validation_epoch_start(self) -> None:
        """Called by Lightning before each validation pass."""
        self._val_outputs = []

    def validation_step(self, batch, batch_idx: int) -> None:
        """Called by Lightning for every validation batch; keeps predictions for the reports."""
        logits, losses, labels, indices = self._evaluate(batch, "val", self.val_acc, self.val_f1)
        self._val_outputs.append(
            {"probs": logits.float().softmax(1), "targets": labels, "losses": losses, "indices": indices}
        )

    def on_validation_epoch_end(self) -> None:
        """Called by Lightning after each validation pass: the epoch's predictions in one place."""
        if self._val_outputs:
            results = {k: torch.cat([o[k] for o in self._val_outputs]) for k in self._val_outputs[0]}
            if self.trainer.world_size > 1:
                results = gather_predictions(self, results)
            self.val_results = {k: v.cpu() for k, v in results.items()}
        self._val_outputs = []

    def test_step(self, batch, batch_idx: int) -> None:
        """Called by Lightning's ``trainer.test`` for every batch of the test split."""
        self._evaluate(batch, "test", self.test_acc, self.test_f1)

    # ---- optimiser ---------------------------------------------------------------------------
    def configure_optimizers(self):
        """Called by Lightning once before training: AdamW with two learning rates and a schedule."""
        hp = self.hparams
        optimizer = torch.optim.AdamW(
            [
                {"params": self.head_parameters(), "lr": hp.lr, "name": "head"},
                {"params": self.backbone_parameters(), "lr": hp.lr * hp.backbone_lr_factor, "name": "backbone"},
            ],
            weight_decay=hp.weight_decay,
        )
        total = self.trainer.estimated_stepping_batches
        freeze_steps = total * hp.freeze_epochs // max(1, self.trainer.max_epochs)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_schedule(total, freeze_steps, hp.warmup_fraction))
        # "name" makes TensorBoard show the rates as learning_rate/head and learning_rate/backbone.
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "interval": "step", "name": "learning_rate"}}
