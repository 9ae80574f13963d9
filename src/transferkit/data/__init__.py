"""Data sources -> (items, labels): image folders and CSVs, text tables and folders; robust decoding; splits."""

from .images import ImageDecodeError as ImageDecodeError
from .images import load_image as load_image
from .sources import LabeledImages as LabeledImages
from .sources import check_trainable as check_trainable
from .sources import read_images as read_images
from .sources import stratified_split as stratified_split
from .texts import LabeledTexts as LabeledTexts
from .texts import is_text_source as is_text_source
from .texts import read_texts as read_texts
