"""After training: the best checkpoint scored once more, on the whole val set and the test set.

What it returns is most of metrics.json; train.py adds the settings of the run.
"""

from __future__ import annotations

import os

import lightning as L
import torch

from {{ cookiecutter.package_name }}.reporting.scores import per_class_scores
from {{ cookiecutter.package_name }}.reporting.validation import ValidationResults
from {{ cookiecutter.package_name }}.run_folder.folder import RunFolder
from {{ cookiecutter.package_name }}.training.speed import ImagesPerSecond


def evaluate(trainer: L.Trainer, model: L.LightningModule, datamodule: L.LightningDataModule, run: RunFolder,
             validation: ValidationResults, throughput: ImagesPerSecond, accelerator: str, precision: str) -> dict:
    """Validate (and test, if there is a test split) the best checkpoint; return metrics.json's numbers.

    ``validation`` then holds that validation's predictions, for TensorBoard's last pictures and report.md.
    """
    best = run.best if run.best.is_file() else run.last
    evaluator = L.Trainer(
        accelerator=accelerator, devices=1, precision=precision, logger=False, callbacks=[validation],
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )
    # When the last epoch was the best, best.ckpt and last.ckpt are one file (see SafeCheckpointIO): the
    # model already holds those weights and the scores of their validation, so nothing is loaded or redone.
    if best == run.best and run.last.is_file() and os.path.samefile(run.best, run.last):
        checkpoint = None
        val = {key: float(value) for key, value in trainer.callback_metrics.items() if key.startswith("val/")}
    else:
        checkpoint = best
        val = evaluator.validate(model, datamodule=datamodule, ckpt_path=best, weights_only=True, verbose=False)[0]
    splits = datamodule.splits
    per_class = per_class_scores(validation.results, len(splits.classes))
    metrics = {
        "val_acc": round(val["val/acc"], 4),
        "val_f1_macro": round(val["val/f1_macro"], 4),
        "val_loss": round(val["val/loss"], 4),
        "per_class": {
            name: {key: round(values[i], 4) for key, values in per_class.items()}
            for i, name in enumerate(splits.classes)
        },
    }
    if splits.test:
        test = evaluator.test(model, datamodule=datamodule, ckpt_path=checkpoint, weights_only=True, verbose=False)[0]
        metrics.update(test_acc=round(test["test/acc"], 4), test_f1_macro=round(test["test/f1_macro"], 4))
        trainer.logger.log_metrics({"test/acc": test["test/acc"], "test/f1_macro": test["test/f1_macro"]},
                                   step=trainer.global_step)
    metrics.update(
        epochs=trainer.current_epoch,
        best_checkpoint=str(best),
        train_images_per_s=round(throughput.history[-1], 1) if throughput.history else None,
        device=accelerator if accelerator != "gpu" else f"cuda ({torch.cuda.get_device_name(0)})",
        precision=precision,
        images={"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)},
        skipped=dict(splits.skipped),
    )
    return metrics
