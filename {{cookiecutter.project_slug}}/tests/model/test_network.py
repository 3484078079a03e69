"""The network: drop path, local weights files, the offline error, unknown names."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import timm
import torch
from PIL import Image

from {{ cookiecutter.package_name }}.errors import UserError
from {{ cookiecutter.package_name }}.model.network import build_network
from {{ cookiecutter.package_name }}.model.weights import load_starting_weights, weights_source

from ..conftest import TINY_MODEL


def create_backbone(name: str, num_classes: int, pretrained: bool = True, weights: str | None = None,
                    image_size: int | None = None, drop_path: float | str = 0.0) -> tuple[torch.nn.Module, str]:
    """What a new run does: build the network, then load its starting weights; and their source in words."""
    network = build_network(name, num_classes, image_size, drop_path=drop_path)
    load_starting_weights(network, name, image_size, pretrained, weights)
    return network, weights_source(name, pretrained, weights)


def test_drop_path_skips_residual_blocks_in_training_only() -> None:
    """--drop-path reaches timm's stochastic depth: training forwards differ from run to run, evaluation
    ones do not (predict and export see the whole network); 0 builds no DropPath at all."""
    # efficientnet_lite0, the default: the tiny test model has no residual blocks to skip.
    model, _ = create_backbone("efficientnet_lite0", 3, pretrained=False, drop_path=0.5)
    images = torch.randn(8, 3, 32, 32)
    torch.manual_seed(0)
    model.train()
    assert not torch.equal(model(images), model(images))
    model.eval()
    assert torch.equal(model(images), model(images))
    plain, _ = create_backbone("efficientnet_lite0", 3, pretrained=False)
    assert not any(isinstance(m, timm.layers.DropPath) for m in plain.modules())
    with pytest.raises(UserError, match="--drop-path"):  # a model without residual blocks: one clear line
        create_backbone("inception_v3", 3, pretrained=False, drop_path=0.2)


def test_drop_path_auto_skips_blocks_from_224_px_up_only() -> None:
    """The default, auto: stochastic depth at 224 px and above, none below; on a model without residual
    blocks, auto quietly builds it without (only an explicit --drop-path is refused there)."""
    def drop_paths(model: torch.nn.Module) -> list[float]:
        return [m.drop_prob for m in model.modules() if isinstance(m, timm.layers.DropPath)]

    large, _ = create_backbone("efficientnet_lite0", 3, pretrained=False, image_size=224, drop_path="auto")
    assert drop_paths(large) and max(drop_paths(large)) == pytest.approx(0.2, abs=0.02)  # timm ramps it up to 0.2
    small, _ = create_backbone("efficientnet_lite0", 3, pretrained=False, image_size=128, drop_path="auto")
    assert drop_paths(small) == []
    plain, _ = create_backbone("inception_v3", 3, pretrained=False, image_size=299, drop_path="auto")
    assert plain.num_classes == 3


def test_weights_file_loads_the_backbone_and_makes_a_new_head(tmp_path: Path) -> None:
    """--weights copies every backbone tensor from the file; the head is new, sized for our classes."""
    source = timm.create_model(TINY_MODEL, num_classes=1000)
    file = tmp_path / "backbone.pth"
    torch.save(source.state_dict(), file)
    model, where = create_backbone(TINY_MODEL, num_classes=3, weights=str(file))
    assert where == f"file:{file.resolve()}"
    mine, theirs = model.state_dict(), source.state_dict()
    head = model.get_classifier()
    assert head.out_features == 3
    backbone_keys = [k for k in mine if not k.startswith("classifier.")]
    assert backbone_keys and all(torch.equal(mine[k], theirs[k]) for k in backbone_keys)


def test_safetensors_weights_load_too(tmp_path: Path) -> None:
    """A .safetensors file (as on the Hugging Face Hub) works the same way."""
    from safetensors.torch import save_file

    source = timm.create_model(TINY_MODEL, num_classes=1000)
    file = tmp_path / "model.safetensors"
    save_file(source.state_dict(), str(file))
    model, _ = create_backbone(TINY_MODEL, num_classes=5, weights=str(file))
    assert torch.equal(model.conv_stem.weight, source.conv_stem.weight)


class RunsCode:
    """Unpickling this calls a function: what a booby-trapped weights file does."""

    def __reduce__(self):
        return (print, ("this ran on load",))


def test_weights_files_are_read_as_tensors_only(tmp_path: Path, capsys) -> None:
    """--weights loads with weights_only=True: a checkpoint that wraps the tensors (timm's training ones keep
    their settings beside them) loads, a pickle of other objects is refused in one line and runs nothing."""
    from argparse import Namespace

    source = timm.create_model(TINY_MODEL, num_classes=1000)
    wrapped = tmp_path / "checkpoint.pth.tar"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()},
                "args": Namespace(model=TINY_MODEL), "epoch": 3}, wrapped)
    model, _ = create_backbone(TINY_MODEL, num_classes=3, weights=str(wrapped))
    assert torch.equal(model.conv_stem.weight, source.conv_stem.weight)

    trapped = tmp_path / "trapped.pth"
    torch.save({"conv_stem.weight": RunsCode()}, trapped)
    with pytest.raises(UserError, match="not plain tensors.*state_dict") as refused:
        create_backbone(TINY_MODEL, num_classes=3, weights=str(trapped))
    assert "\n" not in str(refused.value)
    assert "this ran on load" not in capsys.readouterr().out
    not_weights = tmp_path / "numbers.pth"
    torch.save([1, 2, 3], not_weights)
    with pytest.raises(UserError, match="holds no tensors by name"):
        create_backbone(TINY_MODEL, num_classes=3, weights=str(not_weights))


def test_weights_of_another_model_are_refused(tmp_path: Path) -> None:
    """A weights file from a different architecture is refused in one line naming the fix."""
    file = tmp_path / "resnet.pth"
    torch.save(timm.create_model("test_resnet").state_dict(), file)
    with pytest.raises(UserError, match="does not fit backbone 'test_efficientnet'.*--backbone"):
        create_backbone(TINY_MODEL, num_classes=3, weights=str(file))


def test_vision_transformer_is_built_for_the_training_size(tmp_path: Path) -> None:
    """A ViT cuts images into a fixed grid of patches: it is built for --image-size, and a weights file
    saved at its native size (160 px for test_vit) has its position table resized by timm to fit."""
    source = timm.create_model("test_vit", num_classes=1000)
    file = tmp_path / "vit.pth"
    torch.save(source.state_dict(), file)
    for weights in (None, str(file)):
        model, _ = create_backbone("test_vit", num_classes=3, pretrained=False, weights=weights, image_size=64)
        assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 3)
    assert torch.equal(model.patch_embed.proj.weight, source.patch_embed.proj.weight)


def test_missing_weights_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        create_backbone(TINY_MODEL, num_classes=3, weights=str(tmp_path / "nope.pth"))


def test_unknown_backbone_suggests_close_names() -> None:
    """A typo in the backbone name suggests real timm names."""
    with pytest.raises(UserError, match="no model called 'resnet5O'.*resnet50"):
        create_backbone("resnet5O", num_classes=3, pretrained=False)


@pytest.mark.parametrize(
    "network",
    [
        {"HF_HUB_OFFLINE": "1"},  # the user said "offline"
        {"HF_ENDPOINT": "http://127.0.0.1:9"},  # nothing answers: like a laptop on a plane
    ],
    ids=["HF_HUB_OFFLINE", "unreachable"],
)
def test_offline_without_cache_fails_fast_with_both_fixes(tmp_path: Path, network: dict) -> None:
    """Pretrained by name, no network, empty cache: one line naming --weights and --no-pretrained, quickly,
    and exit code 3 (the template's `make quickstart` falls back to training from scratch on it)."""
    code = (
        "from {{ cookiecutter.package_name }}.cli import main\n"
        f"main(['train', '--data', {str(tmp_path)!r}, '--backbone', '{TINY_MODEL}',"
        f" '--output', {str(tmp_path / 'runs')!r}])"
    )
    data = tmp_path / "train"
    for label in ("a", "b"):
        (data / label).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (32, 32), (i * 40, 0, 0)).save(data / label / f"{i}.png")
    env = {key: value for key, value in os.environ.items() if not key.startswith("HF_")}
    env.update(network, HF_HOME=str(tmp_path / "hf"), TORCH_HOME=str(tmp_path / "torch"))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    seconds = time.perf_counter() - start
    assert done.returncode == 3
    last_line = done.stderr.strip().splitlines()[-1]
    assert "Traceback" not in done.stderr
    assert "--weights FILE" in last_line and "--no-pretrained" in last_line
    # Without the fast path the hub client retries for about a minute. The bound is loose because the
    # subprocess also imports torch and Lightning, which is slow on a busy machine (typically 5-10 s in all).
    assert seconds < 45
