"""The network and how it learns.

``training/backbones.py`` builds any timm model with a fresh head sized for your classes, starting from
pretrained weights (``create_backbone``: downloaded by name, or a local file; ``--drop-path`` makes
training skip residual blocks at random, from 224 px up by default). ``Classifier`` is the
LightningModule: it normalises batches on the device, then fine-tunes in two phases:

1. Head only (``freeze_epochs``): the pretrained backbone is frozen and only computes features; at
   the end the new head is fitted to all of them with many quick steps (a "linear probe"), before
   that epoch's validation, so its score is the probe's and the best checkpoint may be the probe.
2. Everything (the other epochs): backbone and head learn together; each backbone layer at 0.8x the
   rate of the one above it (``layer_decay``), so the first layers, the most general, change least.
   BatchNorm's statistics start afresh each epoch, so evaluation uses those of your photos alone.

Validation (and predict) average each photo's answer with its mirror image's (training/mirror.py).

``benchmarks/recipe.py`` in the template measured every choice here against fastai's ``fine_tune``.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from {{ cookiecutter.package_name }}.data import images_to_float, train_augmentation
from {{ cookiecutter.package_name }}.training.backbones import backbone_layers
from {{ cookiecutter.package_name }}.training.checkpoints import PROJECT
from {{ cookiecutter.package_name }}.training.mirror import mirror_averaged
from {{ cookiecutter.package_name }}.training.validation import EvaluationSteps

# Full-batch steps that fit the new head to the frozen backbone's features before the backbone thaws.
# One head-only epoch of a small dataset is only a handful of steps (5 for 160 photos), far too few for
# a new layer; on stored features 200 steps take well under a second.
HEAD_FIT_STEPS = 200


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


def restart_batchnorm_averages(model: nn.Module) -> None:
    """Make each BatchNorm layer's running statistics the plain average of the batches from now on.

    BatchNorm layers keep running averages of their inputs, which evaluation uses. PyTorch's default
    moves them 10% a step, so with few steps an epoch the ImageNet statistics never wash out (on 180
    photos, 5 steps an epoch, validation fell from 92% to 62% while training accuracy rose; the same
    weights with re-measured statistics scored 92%). Called at the start of every fine-tuning epoch, this
    makes the epoch's statistics count alone, every batch equally: a fast moving average fixed the 62%
    but rested on the epoch's last two or three batches, and scores swung with them from seed to seed.
    """
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # None: a cumulative average of every batch since the reset


class Classifier(EvaluationSteps, L.LightningModule):
    """A timm backbone with a new head, trained with the fine-tuning recipe described above.

    Validation and test (loss, accuracy and macro F1 of each split) come from ``EvaluationSteps``."""

    def __init__(self, model: nn.Module, backbone: str, class_names: list[str], data_config: dict[str, Any],
                 lr: float = 2e-3, backbone_lr_factor: float = 1.0, layer_decay: float = 0.8,
                 weight_decay: float = 0.01, warmup_fraction: float = 0.1, label_smoothing: float = 0.1,
                 freeze_epochs: int = 1, pretrained_source: str = "none", project: str = PROJECT,
                 class_weights: list[float] | None = None, channels_last: bool = False,
                 flip: bool = True):
        super().__init__()
        # Everything except the network itself goes into the checkpoint, so predict/export can rebuild it.
        # channels_last is how this machine stores pixels (device.py), not part of the model: left out.
        self.save_hyperparameters(ignore=["model", "channels_last"])
        # Evaluation averages each photo with its mirror image only for a model trained on mirrored photos
        # (not with --no-flip); predict and export read this from the checkpoint (training/checkpoints.py).
        self.hparams.mirror_average = flip
        self.channels_last = channels_last
        self.model = model.to(memory_format=torch.channels_last) if channels_last else model
        # Random crop, flip (unless --no-flip), colour jitter: a plain object, see data.py.
        self.augment = train_augmentation(data_config, flip=flip)
        num_classes = len(class_names)
        self.register_buffer("mean", torch.tensor(data_config["mean"]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(data_config["std"]).view(1, 3, 1, 1), persistent=False)
        # --balance weighted-loss: rare classes weigh more in the training loss (None: all equal).
        weights = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.register_buffer("class_weights", weights, persistent=False)
        # validate_args=False: our labels are always valid, and the checks would make the CPU wait for the GPU.
        self.train_acc = MulticlassAccuracy(num_classes, average="micro", validate_args=False)
        self.add_scores(num_classes)  # validation's and test's accuracy and macro F1 (training/validation.py)
        self.backbone_frozen = freeze_epochs > 0
        self.frozen_features: list[tuple[torch.Tensor, torch.Tensor]] = []  # (features, labels) of head-only epochs

    # ---- the network -------------------------------------------------------------------------
    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.model.get_classifier().parameters())

    def backbone_parameters(self) -> list[nn.Parameter]:
        head = {id(p) for p in self.head_parameters()}
        return [p for p in self.model.parameters() if id(p) not in head]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised images -> class logits; outside training, averaged with the mirror images' logits."""
        if self.training or not self.hparams.mirror_average:
            return self.model(images)
        return mirror_averaged(self.model, images)

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

    def on_train_epoch_start(self) -> None:
        """Called by Lightning at the start of every training epoch: freeze or thaw the backbone."""
        self.backbone_frozen = self.current_epoch < self.hparams.freeze_epochs
        for parameter in self.backbone_parameters():
            parameter.requires_grad_(not self.backbone_frozen)
        # A frozen backbone also keeps its BatchNorm statistics: eval mode stops them drifting. (Letting
        # them adapt to your photos in this phase, or training them as fastai does, measured no better.)
        self.model.train(not self.backbone_frozen)
        self.model.get_classifier().train()
        if not self.backbone_frozen:
            restart_batchnorm_averages(self.model)

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
            logits = self.model(images)  # one view of each photo: the mirror average is for evaluation
        loss = self.loss(logits, labels)
        # update() only: the epoch's value is what we log, so no per-batch value is computed. Accuracy
        # alone: report.md compares it with val/acc; a training F1 as well cost work at every step.
        self.train_acc.update(logits, labels)
        # Not in the progress bar: showing a per-step value there makes the CPU wait for the GPU every step.
        self.log("train/loss", loss, on_step=True, on_epoch=True, batch_size=len(labels))
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True)
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        """Called by Lightning after each training batch: the last one of the head-only phase fits the
        head, so that epoch's validation scores the fitted head and the best checkpoint can keep it."""
        last_frozen_epoch = self.current_epoch == self.hparams.freeze_epochs - 1
        if last_frozen_epoch and batch_idx == self.trainer.num_training_batches - 1 and self.frozen_features:
            self.fit_head()

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

    # ---- optimiser ---------------------------------------------------------------------------
    def configure_optimizers(self):
        """Called by Lightning once before training: AdamW, a learning rate per layer, and a schedule."""
        hp = self.hparams
        groups = [{"params": self.head_parameters(), "lr": hp.lr, "name": "head"}]
        for depth, parameters in enumerate(backbone_layers(self.model), start=1):  # just below the head first
            groups.append({"params": parameters, "name": f"backbone_{depth}",
                           "lr": hp.lr * hp.backbone_lr_factor * hp.layer_decay ** depth})
        optimizer = torch.optim.AdamW(groups, weight_decay=hp.weight_decay)
        total = self.trainer.estimated_stepping_batches
        freeze_steps = total * hp.freeze_epochs // max(1, self.trainer.max_epochs)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_schedule(total, freeze_steps, hp.warmup_fraction))
        # "name" makes TensorBoard show the rates as weights_learning_rate/head, .../backbone_1, ...: a name
        # that sorts after train/ and val/, so the loss and accuracy curves open TensorBoard's first screen.
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "interval": "step", "name": "weights_learning_rate"}}
