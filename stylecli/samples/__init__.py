"""Sample photos shipped inside the package (public domain; README.txt here records each one's source and
license), usable wherever an input path is: `stylecli edit sample:astronaut ...`. Dependency-free."""

from __future__ import annotations

from pathlib import Path

PREFIX = "sample:"
FOLDER = Path(__file__).resolve().parent
# name -> (file, license): the license is also in README.txt beside the files
SAMPLES: dict[str, tuple[str, str]] = {
    "astronaut": ("astronaut.jpg", "public domain (NASA portrait of Eileen Collins, via scikit-image)"),
}


class UnknownSample(ValueError):
    pass


def is_sample(arg: str) -> bool:
    return str(arg).startswith(PREFIX)


def sample_path(name: str) -> Path:
    """The file of sample NAME; UnknownSample (its message lists the names) for any other name."""
    if name not in SAMPLES:
        raise UnknownSample(f"{PREFIX}{name}: no such sample photo (the samples: "
                            f"{', '.join(PREFIX + n for n in SAMPLES)})")
    return FOLDER / SAMPLES[name][0]


def resolve_sample(arg: str) -> Path:
    """`sample:NAME` -> the packaged file (its stem is NAME); any other argument -> the path as given."""
    return sample_path(str(arg)[len(PREFIX):]) if is_sample(arg) else Path(arg)


def sample_name(path: Path) -> str | None:
    """NAME when `path` is the packaged file of sample NAME, else None (for sidecars: the photo is found
    again after the package moves, e.g. a new virtual environment)."""
    try:
        resolved = Path(path).resolve()
    except OSError:
        return None
    return next((n for n, (f, _) in SAMPLES.items() if resolved == FOLDER / f), None)
