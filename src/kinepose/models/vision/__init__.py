"""Image models (the optional ``vision`` extra: torchvision). :mod:`kinepose.models.vision.backbones`: torchvision
backbones by name, local weights only, features from any stage."""

from kinepose.models.vision.backbones import BACKBONES, Backbone, create_backbone, find_weights, list_backbones

__all__ = ["BACKBONES", "Backbone", "create_backbone", "find_weights", "list_backbones"]
