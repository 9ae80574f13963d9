"""The model zoo: one registry of image backbones and text encoders, where their weights come from, and builders."""

from ._images import create_backbone as create_backbone
from ._images import read_state_dict as read_state_dict
from ._images import set_num_classes as set_num_classes
from ._images import weights_digest as weights_digest
from ._local import local_zoo_dir as local_zoo_dir
from ._registry import DEFAULT_BACKBONE as DEFAULT_BACKBONE
from ._registry import DEFAULT_TEXT_ENCODER as DEFAULT_TEXT_ENCODER
from ._registry import DEFAULTS as DEFAULTS
from ._registry import SIDE_BY_SIDE as SIDE_BY_SIDE
from ._registry import list_models as list_models
from ._registry import register_local_model as register_local_model
from ._registry import resolve as resolve
from ._spec import ModelSpec as ModelSpec
from ._text import WordVectors as WordVectors
from ._text import file_digest as file_digest
from ._text import load_sentence_transformer as load_sentence_transformer
from ._text import read_word_vectors as read_word_vectors
