"""Defaults that the library uses and the command line shows, written once. Dependency-free, so `stylecli --help`
reads them without importing torch or numpy. (Training's defaults are TrainConfig's, in training/config.py, which
is dependency-free too.)"""

from __future__ import annotations

DEFAULT_MODEL = "e4e_ffhq"  # the registry encoder used when neither --model nor --checkpoint is given
DEFAULT_MAX_PIXELS = 100_000_000  # 100 megapixels; --max-pixels raises it
# The named InterFaceGAN directions, in the order they are listed: `edit -h` names them without importing the
# catalog; editing/named.py gives each its meaning, default strength, suggested range and source.
INTERFACEGAN_NAMES = ("age", "smile", "pose", "gender", "beard", "hair_length")

# Pivotal tuning: danielroich/PTI's configs/hyperparameters.py (names in the comments).
PTI_STEPS = 350  # max_pti_steps
PTI_LR = 3e-4  # pti_learning_rate (Adam, default betas)
PTI_LPIPS_STOP = 0.06  # LPIPS_value_threshold
SERVE_TUNE_STEPS = 50  # `serve`: the page's tuning, short (PTI reports about 2 minutes a face for its 350 steps)
SERVE_MAX_SESSIONS = 8  # browser sessions with files on disk at once (`serve --max-sessions`)
SERVE_SESSION_TIMEOUT_MIN = 30  # minutes idle before a session's files go (`serve --session-timeout`)
SERVE_MAX_UPLOAD_MB = 50  # the largest upload, in MB of 10^6 bytes (`serve --max-upload-mb`)
