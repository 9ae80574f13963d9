"""Data sources -> labeled items: image folders and CSVs, text tables and folders; robust decoding; splits."""

from .images import ImageDecodeError as ImageDecodeError
from .images import load_image as load_image
from .labeled import Labeled as Labeled
from .labeled import check_trainable as check_trainable
from .labeled import stratified_split as stratified_split
from .labeled import validation_fraction as validation_fraction
from .sources import read_images as read_images
from .texts import is_text_source as is_text_source
from .texts import read_texts as read_texts
