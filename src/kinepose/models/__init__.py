"""Models: a registry of families (``create_model(name, skeleton, **config)``, ``list_models()``), their base
type and output, rotation heads, layers, losses, and model files (``save_model`` / ``load_model``).

- :mod:`kinepose.models.ik`: joints -> rotations (``iknet``, ``seed0``, ``sequence``, ``hybrid``).

Importing this package registers every built-in family.
"""

from kinepose.models import ik  # noqa: F401  (registers the families)
from kinepose.models.base import ModelOutput, PoseModel, scatter_rotations
from kinepose.models.files import load_model, model_config, save_model
from kinepose.models.registry import create_model, list_models, register_model

__all__ = [
    "ModelOutput",
    "PoseModel",
    "create_model",
    "list_models",
    "load_model",
    "model_config",
    "register_model",
    "save_model",
    "scatter_rotations",
]
