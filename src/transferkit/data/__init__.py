"""Data sources -> (paths, labels), robust decoding and splits."""

from .images import ImageDecodeError as ImageDecodeError
from .images import load_image as load_image
from .sources import LabeledImages as LabeledImages
from .sources import check_trainable as check_trainable
from .sources import read_images as read_images
from .sources import stratified_split as stratified_split
