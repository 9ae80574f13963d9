"""The training engine: datasets, the Lightning module and the Trainer set-up."""

from .data import ImageFiles as ImageFiles
from .engine import TrainConfig as TrainConfig
from .engine import train_network as train_network
