"""The fine-tuning recipe: the LR schedule, the head fitted before the backbone thaws, the weighted loss."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from {{ cookiecutter.package_name }}.model import Classifier, lr_schedule
from {{ cookiecutter.package_name }}.training.backbones import create_backbone, model_data_config
from {{ cookiecutter.package_name }}.training.checkpoints import load_network
from {{ cookiecutter.package_name }}.training.mirror import MirrorAveraged

from .conftest import FAST, TINY_MODEL, run_cli


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
    network, _ = create_backbone(TINY_MODEL, 3, pretrained=False)
    model = Classifier(network, TINY_MODEL, ["a", "b", "c"], model_data_config(network, 32), label_smoothing=0.0)
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
    import timm
    import torch.nn.functional as F

    from {{ cookiecutter.package_name }}.model import Classifier
    from {{ cookiecutter.package_name }}.training.backbones import model_data_config

    from .conftest import TINY_MODEL

    network = timm.create_model(TINY_MODEL, pretrained=False, num_classes=2)
    config = model_data_config(network, 32)
    model = Classifier(network, TINY_MODEL, ["cat", "dog"], config, class_weights=[0.2, 1.8], label_smoothing=0.0)
    model.eval()
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
    network, _ = create_backbone(TINY_MODEL, 3, pretrained=False)
    model = Classifier(network, TINY_MODEL, ["a", "b", "c"], model_data_config(network, 32), lr=0.01,
                       layer_decay=0.5)
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
    sees each photo once. A run's checkpoint predicts the same way (a run from before: one view)."""
    torch.manual_seed(0)
    network, _ = create_backbone(TINY_MODEL, 3, pretrained=False)
    model = Classifier(network, TINY_MODEL, ["a", "b", "c"], model_data_config(network, 32)).eval()
    images = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        mirrored = (network(images) + network(images.flip(3))) / 2
        assert torch.allclose(model(images), mirrored)
        assert not torch.allclose(model(images), network(images))
    checkpoint = trained_run / "checkpoints" / "best.ckpt"
    loaded, hparams = load_network(checkpoint)
    assert hparams["mirror_average"] and isinstance(loaded, MirrorAveraged)
    content = torch.load(checkpoint, map_location="cpu", weights_only=True)
    del content["hyper_parameters"]["mirror_average"]
    old = checkpoint.with_name("before-mirror.ckpt")
    torch.save(content, old)
    assert not isinstance(load_network(old)[0], MirrorAveraged)


def test_no_flip_trains_and_predicts_without_mirror_images(image_folder, tmp_path) -> None:
    """--no-flip (digits, text): training never mirrors, and the checkpoint predicts from one view."""
    args = ["--data", str(image_folder), *FAST, "--epochs", "1", "--output", str(tmp_path), "--name", "nf"]
    assert run_cli("train", *args, "--no-flip") == 0
    loaded, hparams = load_network(tmp_path / "nf" / "checkpoints" / "best.ckpt")
    assert hparams["flip"] is False and hparams["mirror_average"] is False
    assert not isinstance(loaded, MirrorAveraged)
    assert "flip: false" in (tmp_path / "nf" / "config.yaml").read_text()
