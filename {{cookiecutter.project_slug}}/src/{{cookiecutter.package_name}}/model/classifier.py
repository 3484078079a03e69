"""The ``Classifier``: the network and how it learns.

It builds any timm model with a fresh head sized for your classes (model/network.py), with its starting
weights (model/weights.py), normalises batches on the device, then fine-tunes in two phases:

1. Head only (``freeze_epochs``): the pretrained backbone is frozen and only computes features; at
   the end the new head is fitted to all of them with many quick steps (a "linear probe"), before
   that epoch's validation, so its score is the probe's and the best checkpoint may be the probe.
2. Everything (the other epochs): backbone and head learn together; each backbone layer at 0.8x the
   rate of the one above it (``layer_decay``), so the first layers, the most general, change least.
   BatchNorm's statistics start afresh each epoch, so evaluation uses those of your photos alone.

Validation, test and predict average each photo's answer with its mirror image's (``mirror_averaged``).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from {{ cookiecutter.package_name }}.data import images_to_float, train_augmentation
from {{ cookiecutter.package_name }}.model.network import (
    MirrorAveraged,
    backbone_layers,
    build_network,
    mirror_averaged,
    model_data_config,
)
from {{ cookiecutter.package_name }}.model.schedule import lr_schedule, restart_batchnorm_averages
from {{ cookiecutter.package_name }}.model.weights import load_starting_weights, weights_source

PROJECT = "{{ cookiecutter.package_name }}"  # stored in checkpoints so another project's are refused

# Full-batch steps that fit the new head to the frozen backbone's features before the backbone thaws.
# One head-only epoch of a small dataset is only a handful of steps (5 for 160 photos), far too few for
# a new layer; on stored features 200 steps take well under a second.
HEAD_FIT_STEPS = 200


class Classifier(L.LightningModule):
    """A timm backbone with a new head, trained with the fine-tuning recipe described above.

    ``settings``: the run's settings as a plain dict (``Config.to_dict()``): the backbone, image size
    and drop path build the network, the training ones (lr, layer_decay, ...) steer how it learns. They
    are saved in the checkpoint with the class names and the preprocessing, so
    ``Classifier.load_from_checkpoint(path)`` rebuilds the same network (no download) with its weights.
    A new run then loads its starting weights: ``load_starting_weights``.
    """

    def __init__(self, settings: dict[str, Any], class_names: list[str], data_config: dict[str, Any] | None = None,
                 class_weights: list[float] | None = None, project: str = PROJECT, channels_last: bool = False):
        super().__init__()
        # channels_last is how this machine stores pixels (device.py), not part of the model: left out.
        self.save_hyperparameters(ignore=["channels_last"])
        self.model = build_network(settings["backbone"], len(class_names), settings["image_size"],
                                   drop_path=settings["drop_path"])
        # The preprocessing the backbone was pretrained with; a checkpoint keeps the one it was trained with.
        data_config = data_config or model_data_config(self.model, settings["image_size"])
        self.hparams.data_config = data_config
        self.hparams.pretrained_source = weights_source(settings["backbone"], settings["pretrained"],
                                                        settings["weights"])
        self.channels_last = channels_last
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        # Random crop, flip (unless --no-flip), colour jitter: a plain object, see data.py.
        self.augment = train_augmentation(data_config, flip=settings["flip"])
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
        self.val_f1 = MulticlassF1Score(average="macro", **metric_args)  # every class counts equally
        self.test_acc = MulticlassAccuracy(average="micro", **metric_args)
        self.test_f1 = MulticlassF1Score(average="macro", **metric_args)
        self.backbone_frozen = settings["freeze_epochs"] > 0
        self.frozen_features: list[tuple[torch.Tensor, torch.Tensor]] = []  # (features, labels) of head-only epochs

    @property
    def lr(self) -> float | str:
        """The head's learning rate (the ``lr`` setting); the LR finder sets it (Lightning's name for it)."""
        return self.hparams.settings["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        self.hparams.settings["lr"] = value

    def load_starting_weights(self) -> str:
        """A new run's starting weights: ``--weights FILE``, or timm's pretrained ones (downloaded), or none.
        Returns where they came from, in words."""
        settings = self.hparams.settings
        load_starting_weights(self.model, settings["backbone"], settings["image_size"], settings["pretrained"],
                              settings["weights"])
        return self.hparams.pretrained_source

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.model.get_classifier().parameters())

    def backbone_parameters(self) -> list[nn.Parameter]:
        head = {id(p) for p in self.head_parameters()}
        return [p for p in self.model.parameters() if id(p) not in head]

    def inference_network(self) -> nn.Module:
        """The network as evaluation uses it, as a plain PyTorch module (what predict and export run)."""
        return MirrorAveraged(self.model) if self.hparams.settings["flip"] else self.model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised images -> class logits; outside training, averaged with the mirror images' logits."""
        if self.training or not self.hparams.settings["flip"]:
            return self.model(images)
        return mirror_averaged(self.model, images)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """Called by Lightning once a batch is on the device: uint8 -> normalised float there.

        Training batches are also randomly cropped, flipped and colour-jittered here, every image
        differently: on the device this costs a fraction of a step; in loader workers it would be the bottleneck.
        """
        images, *rest = batch if isinstance(batch, (list, tuple)) else (batch,)  # (images, labels, indices)
        training = self._trainer is not None and self.trainer.training
        images = images_to_float(images, self.mean, self.std, augment=self.augment if training else None)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return (images, *rest) if rest else images

    def on_fit_start(self) -> None:
        """Called by Lightning when fit starts (the LR finder's trial fit included): no stale features."""
        self.frozen_features = []

    def on_train_epoch_start(self) -> None:
        """Called by Lightning at the start of every training epoch: freeze or thaw the backbone."""
        self.backbone_frozen = self.current_epoch < self.hparams.settings["freeze_epochs"]
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
        last_frozen_epoch = self.current_epoch == self.hparams.settings["freeze_epochs"] - 1
        if last_frozen_epoch and batch_idx == self.trainer.num_training_batches - 1 and self.frozen_features:
            self.fit_head()

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The training loss: cross-entropy, softened targets, rare classes weighted up (--balance)."""
        smoothing = self.hparams.settings["label_smoothing"]
        return F.cross_entropy(logits, labels, weight=self.class_weights, label_smoothing=smoothing)

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
        weight_decay = self.hparams.settings["weight_decay"]
        optimizer = torch.optim.AdamW(head.parameters(), lr=self.lr, weight_decay=weight_decay)
        with torch.enable_grad():
            for _ in range(HEAD_FIT_STEPS):
                optimizer.zero_grad()
                self.loss(head(features.float()), labels).backward()
                optimizer.step()

    def _evaluate(self, batch, stage: str, accuracy, f1) -> tuple[torch.Tensor, ...]:
        """Logits, per-image losses, labels and indices of one batch; logs the split's loss and scores."""
        images, labels, indices = batch
        logits = self(images)
        losses = F.cross_entropy(logits, labels, reduction="none")
        accuracy(logits, labels)
        f1(logits, labels)
        self.log(f"{stage}/loss", losses.mean(), on_epoch=True, batch_size=len(labels), sync_dist=True)
        self.log(f"{stage}/acc", accuracy, on_epoch=True, prog_bar=stage == "val")
        self.log(f"{stage}/f1_macro", f1, on_epoch=True, prog_bar=stage == "val")
        return logits, losses, labels, indices

    def validation_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        """Called by Lightning for every validation batch; what it returns is kept for TensorBoard and
        report.md (``ValidationResults`` in reporting/validation.py)."""
        logits, losses, labels, indices = self._evaluate(batch, "val", self.val_acc, self.val_f1)
        return {"probs": logits.float().softmax(1), "targets": labels, "losses": losses, "indices": indices}

    def test_step(self, batch, batch_idx: int) -> None:
        """Called by Lightning's ``trainer.test`` for every batch of the test split."""
        self._evaluate(batch, "test", self.test_acc, self.test_f1)

    def predict_step(self, batch, batch_idx: int = 0) -> torch.Tensor:
        """Called by Lightning's ``trainer.predict`` for every batch: class probabilities, one row per image."""
        images = batch[0] if isinstance(batch, (list, tuple)) else batch
        return self(images).float().softmax(1)

    def configure_optimizers(self):
        """Called by Lightning once before training: AdamW, a learning rate per layer, and a schedule."""
        hp = self.hparams.settings
        groups = [{"params": self.head_parameters(), "lr": hp["lr"], "name": "head"}]
        for depth, parameters in enumerate(backbone_layers(self.model), start=1):  # just below the head first
            groups.append({"params": parameters, "name": f"backbone_{depth}",
                           "lr": hp["lr"] * hp["backbone_lr_factor"] * hp["layer_decay"] ** depth})
        optimizer = torch.optim.AdamW(groups, weight_decay=hp["weight_decay"])
        total = self.trainer.estimated_stepping_batches
        freeze_steps = total * hp["freeze_epochs"] // max(1, self.trainer.max_epochs)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_schedule(total, freeze_steps,
                                                                          hp["warmup_fraction"]))
        # "name" makes TensorBoard show the rates as weights_learning_rate/head, .../backbone_1, ...: a name
        # that sorts after train/ and val/, so the loss and accuracy curves open TensorBoard's first screen.
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "interval": "step", "name": "weights_learning_rate"}}
