"""Which stylecli modules one command runs through: the modules entered with real calls, and how often control
changes module, for `stylecli edit photo.png -d dir.npy -s 3 --paste-back` on the tiny models.

    python bench/same_outputs.py make /tmp/same     # the tiny models and photos (once)
    python bench/trace_path.py /tmp/same            # prints JSON

Counts come from a profile hook on Python calls whose code lies in the stylecli package (module bodies and class bodies
run at import time are left out: only function calls count).
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import tempfile
from pathlib import Path

import stylecli


def trace(args: list[str]) -> dict:
    package = str(Path(stylecli.__file__).parent) + os.sep
    entered: dict[str, int] = {}
    switches = 0
    last: list[str | None] = [None]

    def hook(frame, event, arg):  # noqa: ARG001
        nonlocal switches
        if event != "call":
            return
        path = frame.f_code.co_filename
        if not path.startswith(package) or not frame.f_code.co_flags & inspect.CO_OPTIMIZED:  # not a class body
            return
        module = "stylecli." + path[len(package):].removesuffix(".py").replace(os.sep, ".").removesuffix(".__init__")
        entered[module] = entered.get(module, 0) + 1
        if module != last[0]:
            switches += last[0] is not None
            last[0] = module

    from stylecli.cli import main

    sys.argv = ["stylecli", *args]
    sys.setprofile(hook)
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    finally:
        sys.setprofile(None)
    return {"command": "stylecli " + " ".join(args[:1] + ["PHOTO"] + args[2:-2]), "exit": code,
            "modules_entered": len(entered), "module_changes": switches, "modules": sorted(entered)}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    folder = Path(sys.argv[1])
    os.environ.update(HF_HUB_OFFLINE="1", STYLECLI_CACHE=tempfile.mkdtemp(prefix="stylecli-trace-"))
    out = tempfile.mkdtemp(prefix="stylecli-trace-out-")
    result = trace(["edit", str(folder / "photo.png"), "--checkpoint", str(folder / "e4e.pt"), "-d",
                    str(folder / "dir.npy"), "-s", "3", "--paste-back", "-q", "-o", out])
    print(json.dumps(result, indent=1))
