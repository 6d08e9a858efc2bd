"""Batch throughput: `stylecli invert --no-align` on a folder of 32 test images, batch 1 vs the default batch.

    python bench/batch.py [--images 32] [--batch 1 4]

Full FFHQ configuration (1024 px, 18 styles, IR-SE50) with random weights; the images are crops of
scikit-image's astronaut photo. Runs the real CLI in this process (model loaded once per run, records
written, outputs on disk) and prints JSON with images per second for each batch size and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()

    import torch
    from PIL import Image
    from skimage import data
    from typer.testing import CliRunner

    from stylecli.cli import app
    from stylecli.encoders.formats.e4e import ModelConfig, default_opts, save_checkpoint
    from stylecli.models.e4e import build_e4e

    report: dict = {"images": args.images, "torch": torch.__version__, "threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory(prefix="stylecli-batch-") as tmp:
        root = Path(tmp)
        os.environ["STYLECLI_CACHE"] = str(root / "cache")
        torch.manual_seed(0)
        save_checkpoint(build_e4e(1024), root / "e4e.pt", default_opts(ModelConfig(1024, "e4e")))
        photos = root / "photos"
        photos.mkdir()
        astro = data.astronaut()
        rng = np.random.default_rng(0)
        for i in range(args.images):
            x, y = rng.integers(0, 256, size=2)
            Image.fromarray(astro[y : y + 256, x : x + 256]).save(photos / f"img{i:03d}.png")
        runner = CliRunner()
        runner.invoke(app, ["invert", str(photos / "img000.png"), "--no-align", "--checkpoint",
                            str(root / "e4e.pt"), "-o", str(root / "warm"), "-q"])  # converts the checkpoint once
        for batch in args.batch:
            out = root / f"out{batch}"
            start = time.perf_counter()
            result = runner.invoke(app, ["invert", str(photos), "--no-align", "--checkpoint", str(root / "e4e.pt"),
                                         "-o", str(out), "--batch-size", str(batch), "-q"])
            seconds = time.perf_counter() - start
            assert result.exit_code == 0, result.output
            report[f"batch{batch}"] = {"seconds": seconds, "images_per_s": args.images / seconds}
        first, last = args.batch[0], args.batch[-1]
        report["ratio"] = report[f"batch{last}"]["images_per_s"] / report[f"batch{first}"]["images_per_s"]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
