"""Featurizers: items (image files, texts) -> feature rows, behind one small interface (see ``_base``)."""

from ._base import Featurizer as Featurizer
from ._base import ItemError as ItemError
from ._base import load_featurizer as load_featurizer
from ._concat import Concat as Concat
from ._image import ImageBackbone as ImageBackbone
from ._text import SentenceEncoder as SentenceEncoder
from ._text import Tfidf as Tfidf
from ._text import WordVectorAverage as WordVectorAverage
from ._text import text_featurizer as text_featurizer
