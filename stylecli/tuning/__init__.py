"""Pivotal tuning (PTI): per-photo generator weights around an editable pivot code, and their storage."""

from stylecli.tuning.generator_weights import GeneratorWeights, fingerprint, render, synthesis_parameters
from stylecli.tuning.projection import ProjectionConfig, project_w
from stylecli.tuning.pti import TuningConfig, TuningResult, target_tensor, tune
from stylecli.tuning.store import TunedWeightsError, load_tuned, save_tuned

__all__ = ["GeneratorWeights", "ProjectionConfig", "TunedWeightsError", "TuningConfig", "TuningResult", "fingerprint",
           "load_tuned", "project_w", "render", "save_tuned", "synthesis_parameters", "target_tensor", "tune"]
