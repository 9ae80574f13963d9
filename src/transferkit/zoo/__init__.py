"""The model zoo: one registry of image backbones and text encoders, their weights and their preprocessing."""

from ._build import create_backbone as create_backbone
from ._build import feature_dim as feature_dim
from ._build import read_state_dict as read_state_dict
from ._build import set_num_classes as set_num_classes
from ._build import weights_digest as weights_digest
from ._local import local_zoo_dir as local_zoo_dir
from ._local import register_local_model as register_local_model
from ._registry import DEFAULT_BACKBONE as DEFAULT_BACKBONE
from ._registry import ModelSpec as ModelSpec
from ._registry import list_models as list_models
from ._registry import resolve as resolve
from ._text import DEFAULT_TEXT_ENCODER as DEFAULT_TEXT_ENCODER
from ._text import SentenceEncoder as SentenceEncoder
from ._text import TextEncoderSpec as TextEncoderSpec
from ._text import WordVectorEncoder as WordVectorEncoder
from ._text import list_text_encoders as list_text_encoders
from ._text import load_text_encoder as load_text_encoder
from ._text import read_word_vectors as read_word_vectors
from ._text import resolve_text_encoder as resolve_text_encoder
