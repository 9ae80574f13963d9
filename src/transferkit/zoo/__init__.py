"""The model zoo: one registry of backbones, their weights and their preprocessing."""

from ._build import create_backbone as create_backbone
from ._build import feature_dim as feature_dim
from ._build import read_state_dict as read_state_dict
from ._build import set_num_classes as set_num_classes
from ._build import weights_digest as weights_digest
from ._registry import DEFAULT_BACKBONE as DEFAULT_BACKBONE
from ._registry import ModelSpec as ModelSpec
from ._registry import list_models as list_models
from ._registry import resolve as resolve
