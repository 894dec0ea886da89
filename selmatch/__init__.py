"""SelMatch: dataset distillation by selection-based initialisation and partial trajectory matching.

A reproduction of Lee & Chung, ICML 2024, as a small library. Start with :func:`load_dataset`.
"""
from .data import DATASETS, DataNotFoundError, ImageDataset, load_dataset
from .formats import DataFormatError
from .scores import ScoreMismatchError, load_scores

__version__ = "0.1.0"
__all__ = ["DATASETS", "DataFormatError", "DataNotFoundError", "ImageDataset", "ScoreMismatchError",
           "load_dataset", "load_scores", "__version__"]
