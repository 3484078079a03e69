"""The Classifier: the LR schedule, the head fitted before the backbone thaws, the weighted loss, the
mirror average, and a checkpoint loaded back with Lightning's ``load_from_checkpoint``."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from {{ cookiecutter.package_name }}.model import Classifier, load_checkpoint
from {{ cookiecutter.package_name }}.model.schedule import lr_schedule

from ..conftest import FAST, run_cli, tiny_classifier


def test_schedule_warms_up_then_decays_in_each_phase() -> None:
    """The LR multiplier rises, falls, and rises again when the backbone thaws."""
    factor = lr_schedule(total_steps=100, freeze_steps=20, warmup_fraction=0.1)
    frozen = [factor(s) for s in range(20)]
    thawed = [factor(s) for s in range(20, 100)]
    assert frozen[0] < frozen[1] == max(frozen) == 1.0
    assert thawed[0] < 0.2 and max(thawed) == 1.0
    assert thawed[-1] < 0.05 and frozen[-1] < 0.1


def test_head_is_fitted_to_the_frozen_features_before_the_backbone_thaws() -> None:
    """The head-only phase ends with the new head fitted to every feature it kept (a linear probe),
    and the kept features are let go."""
    torch.manual_seed(0)
    model = tiny_classifier(label_smoothing=0.0)
    network = model.model
    width = network.get_classifier().in_features
    centres = torch.randn(3, width) * 3
    labels = torch.arange(3).repeat(20)
    features = centres[labels] + torch.randn(len(labels), width)
    model.frozen_features = [(features[:30], labels[:30]), (features[30:], labels[30:])]
    head = network.get_classifier()
    torch.nn.init.zeros_(head.weight)  # a head that knows nothing yet: every image gets class "a"
    model.fit_head()
    assert (head(features).argmax(1) == labels).float().mean().item() == 1.0
    assert model.frozen_features == []


def test_the_head_only_epochs_validation_already_scores_the_fitted_head(image_folder, tmp_path, monkeypatch) -> None:
    """The head is fitted at the last batch of the head-only phase, before that epoch's validation, so the
    best checkpoint can be the linear probe itself; it is fitted once and the backbone thaws after it."""
    calls, seen = [], []
    fit_head, validation_step = Classifier.fit_head, Classifier.validation_step

    def recording_fit_head(self):
        calls.append((self.current_epoch, self.backbone_frozen))
        fit_head(self)

    def recording_validation_step(self, batch, batch_idx):
        if not self.trainer.sanity_checking:
            seen.append((self.current_epoch, len(calls)))
        return validation_step(self, batch, batch_idx)

    monkeypatch.setattr(Classifier, "fit_head", recording_fit_head)
    monkeypatch.setattr(Classifier, "validation_step", recording_validation_step)
    assert run_cli("train", "--data", str(image_folder), *FAST, "--output", str(tmp_path)) == 0
    assert calls == [(0, True)]
    assert {epoch: fitted for epoch, fitted in seen} == {0: 1, 1: 1}


def test_weighted_loss_counts_mistakes_on_rare_classes_more() -> None:
    """The class weights reach the training loss: the same batch gives cross-entropy with those weights."""
    import torch.nn.functional as F

    model = tiny_classifier(["cat", "dog"], class_weights=[0.2, 1.8], label_smoothing=0.0).eval()
    images, labels = torch.randn(6, 3, 32, 32), torch.tensor([0, 0, 0, 0, 1, 1])
    with torch.no_grad():
        loss = model.training_step((images, labels, torch.arange(6)), 0)
        logits = model.model(images)  # training sees one view of each photo
    expected = F.cross_entropy(logits, labels, weight=torch.tensor([0.2, 1.8]))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert loss.item() != pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-3)


def test_each_backbone_layer_learns_at_layer_decay_times_the_rate_of_the_one_above() -> None:
    """The head learns at lr, the backbone layer just below it at lr x 0.5, the next at x 0.25 ...;
    every parameter of the network is in exactly one group."""
    model = tiny_classifier(lr=0.01, layer_decay=0.5)
    network = model.model
    model._trainer = SimpleNamespace(estimated_stepping_batches=10, max_epochs=2)  # all configure_optimizers reads
    groups = model.configure_optimizers()["optimizer"].param_groups
    assert groups[0]["name"] == "head" and len(groups) > 3
    rates = [group["initial_lr"] for group in groups]
    assert rates == pytest.approx([0.01 * 0.5**depth for depth in range(len(groups))])
    grouped = [id(p) for group in groups for p in group["params"]]
    assert sorted(grouped) == sorted(id(p) for p in network.parameters())
    assert id(network.conv_stem.weight) in {id(p) for p in groups[-1]["params"]}  # the stem learns slowest


def test_evaluation_averages_each_photo_with_its_mirror_image(trained_run) -> None:
    """Validation and predict see a photo and its mirror image and average the two answers; training
    sees each photo once. A run's checkpoint, loaded back, predicts the same way."""
    torch.manual_seed(0)
    model = tiny_classifier().eval()
    network = model.model
    images = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        mirrored = (network(images) + network(images.flip(3))) / 2
        assert torch.allclose(model(images), mirrored)
        assert not torch.allclose(model(images), network(images))
        loaded = load_checkpoint(trained_run / "checkpoints" / "best.ckpt")
        assert loaded.hparams.settings["flip"]
        assert torch.allclose(loaded(images), (loaded.model(images) + loaded.model(images.flip(3))) / 2)


def test_no_flip_trains_and_predicts_without_mirror_images(image_folder, tmp_path) -> None:
    """--no-flip (digits, text): training never mirrors, and the checkpoint predicts from one view."""
    args = ["--data", str(image_folder), *FAST, "--epochs", "1", "--output", str(tmp_path), "--name", "nf"]
    assert run_cli("train", *args, "--no-flip") == 0
    loaded = load_checkpoint(tmp_path / "nf" / "checkpoints" / "best.ckpt")
    assert loaded.hparams.settings["flip"] is False
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(loaded(images), loaded.model(images))
    assert "flip: false" in (tmp_path / "nf" / "config.yaml").read_text()


def test_load_from_checkpoint_gives_back_the_trained_model(trained_run, image_folder) -> None:
    """Lightning's ``Classifier.load_from_checkpoint`` rebuilds the network from the checkpoint alone,
    and ``trainer.predict`` gives the same probabilities as the ``predict`` command."""
    import lightning as L

    from {{ cookiecutter.package_name }}.data import ImageFolderDataModule
    from {{ cookiecutter.package_name }}.dataset.folders import find_dataset
    from {{ cookiecutter.package_name }}.predict import load_classifier

    checkpoint = trained_run / "checkpoints" / "best.ckpt"
    model = Classifier.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True)
    assert model.hparams.class_names == ["cat", "dog", "fox"]
    splits = find_dataset(str(image_folder), 0.2, 42)
    datamodule = ImageFolderDataModule(splits, model.hparams.data_config, batch_size=4)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    probabilities = torch.cat(trainer.predict(model, datamodule.val_dataloader()))
    assert probabilities.shape == (len(splits.val), 3)
    assert torch.allclose(probabilities.sum(1), torch.ones(len(splits.val)))
    command = load_classifier(trained_run, accelerator="cpu")
    images = torch.stack([command.load_image(sample.path) for sample in splits.val])
    assert torch.allclose(probabilities, command.probabilities(images), atol=1e-5)
