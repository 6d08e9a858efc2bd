"""Pivotal tuning (PTI): per-photo generator weights around an editable pivot code, and their storage."""

from stylecli.tuning.generator_weights import GeneratorWeights, fingerprint, render, synthesis_parameters
from stylecli.tuning.projection import ProjectionConfig, project_w
from stylecli.tuning.pti import TuningConfig, TuningResult, target_tensor, tune
from stylecli.tuning.store import TUNED_SUFFIX, TunedWeightsError, load_tuned, save_tuned, tuned_path

__all__ = ["TUNED_SUFFIX", "GeneratorWeights", "ProjectionConfig", "TunedWeightsError", "TuningConfig",
           "TuningResult", "fingerprint", "load_tuned", "project_w", "render", "save_tuned", "synthesis_parameters",
           "target_tensor", "tune", "tuned_path"]
