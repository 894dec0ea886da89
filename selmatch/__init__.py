"""SelMatch: dataset distillation by selection-based initialisation and partial trajectory matching.

A reproduction of Lee & Chung, ICML 2024, as a small library. What a notebook or a student needs is here:

    from selmatch import load_dataset, load_scores, sliding_window, distill, evaluate
    ds = load_dataset("cifar10")
    sel = sliding_window(load_scores(ds, "cscore"), ds.y_train, ipc=250, beta=0.5, alpha=0.6)

Data: :func:`load_dataset`, :func:`load_scores` (published difficulty), :func:`record_difficulty` (our own).
Selection: :func:`sliding_window`, :func:`random_subset`. Experts: :class:`ExpertConfig`, :func:`train_experts`.
Distillation: :class:`DistillConfig`, :func:`distill`. Evaluation: :class:`TrainConfig`, :func:`train`,
:func:`evaluate`, :func:`selection_set`. Coverage: :func:`coverage`, :func:`features`. Settings:
:data:`PROFILES`, :data:`PRESETS`, :func:`get_profile`, :func:`get_preset`. The whole pipeline on a dataset,
as the command line and the book run it: :mod:`selmatch.pipeline`. Files: :mod:`selmatch.artifacts`.
"""
__version__ = "0.1.0"

from . import pipeline
from .artifacts import ArtifactError, load_selection, load_synset, load_trajectory, save_selection
from .coverage import coverage, features
from .data import DATASETS, DataNotFoundError, ImageDataset, load_dataset
from .device import resolve_device
from .difficulty import record_difficulty
from .distill import DistillationDiverged, DistillConfig, distill
from .evaluate import evaluate, selection_set
from .experts import ExpertConfig, train_experts
from .formats import DataFormatError
from .scores import ScoreMismatchError, load_scores
from .select import Selection, random_subset, sliding_window
from .settings import PRESETS, PROFILES, Preset, Profile, get_preset, get_profile
from .train import TrainConfig, train

__all__ = ["ArtifactError", "DATASETS", "DataFormatError", "DataNotFoundError", "DistillConfig", "DistillationDiverged",
           "ExpertConfig", "ImageDataset", "PRESETS", "PROFILES", "Preset", "Profile", "ScoreMismatchError", "Selection",
           "TrainConfig", "coverage", "distill", "evaluate", "features", "get_preset", "get_profile", "load_dataset",
           "load_scores", "load_selection", "load_synset", "load_trajectory", "pipeline", "random_subset",
           "record_difficulty", "resolve_device", "save_selection", "selection_set", "sliding_window", "train",
           "train_experts", "__version__"]
