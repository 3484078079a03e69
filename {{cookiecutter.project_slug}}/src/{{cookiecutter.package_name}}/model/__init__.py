"""The model: everything that decides what the network computes and learns.

    classifier.py   the Classifier (a LightningModule): the training, validation, test and predict steps
    network.py      the timm backbone, its preprocessing and layers, mirror averaging
    weights.py      the weights a new run starts from: a --weights file, timm's download, or none
    schedule.py     the learning-rate schedule and BatchNorm's running averages
    checkpoint.py   loads a checkpoint of this project back into a Classifier, refusing anything else

It imports nothing from the machinery (dataset/, training/, sharing/, cli/).
"""

from {{ cookiecutter.package_name }}.model.checkpoint import load_checkpoint
from {{ cookiecutter.package_name }}.model.classifier import PROJECT, Classifier

__all__ = ["PROJECT", "Classifier", "load_checkpoint"]
