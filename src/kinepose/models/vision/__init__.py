"""Image models. :mod:`~kinepose.models.vision.backbones`: torchvision backbones by name (the optional ``vision``
extra), local weights only, features from any stage; :mod:`~kinepose.models.vision.potter`: the POTTER
pooling-attention backbone (pure torch); :mod:`~kinepose.models.vision.fusion`: image + joint fusion for the rotations
positions cannot fix; :mod:`~kinepose.models.vision.d3ke`: D3KE, image window to kinematics;
:mod:`~kinepose.models.vision.image_hand`: image crop to 3D hand joints."""

from kinepose.models.vision.backbones import BACKBONES, Backbone, create_backbone, find_weights, list_backbones
from kinepose.models.vision.d3ke import D3KE, D3KE_CONFIGS, create_d3ke, d3ke_loss, virtual_markers
from kinepose.models.vision.fusion import FusionIK, create_crop_fusion, create_fusion, create_map_fusion
from kinepose.models.vision.image_hand import ImageHand, create_image_hand, image_hand_backbones
from kinepose.models.vision.potter import POTTER_CONFIGS, PotterBackbone, create_potter

__all__ = [
    "BACKBONES",
    "D3KE",
    "D3KE_CONFIGS",
    "POTTER_CONFIGS",
    "Backbone",
    "FusionIK",
    "ImageHand",
    "PotterBackbone",
    "create_backbone",
    "create_crop_fusion",
    "create_d3ke",
    "create_fusion",
    "create_image_hand",
    "create_map_fusion",
    "create_potter",
    "d3ke_loss",
    "find_weights",
    "image_hand_backbones",
    "list_backbones",
    "virtual_markers",
]
