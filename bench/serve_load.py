"""Load on `stylecli serve`: N API clients at once, each uploading a photo and editing it K times.

    python bench/serve_load.py [--clients 4] [--edits 3] [--full] [--device cpu]

Starts the real command (`python -m stylecli serve`) on a free port of 127.0.0.1 with a model of its own: by
default the tiny 32 px model the tests use (tests/conftest.py, random weights), with --full the 1024 px FFHQ e4e
architecture (18 styles, IR-SE50) with random weights from a fixed seed (as bench/compare.py builds it). Each
client is its own `gradio_client.Client` (its own browser session) and calls the `edit` endpoint as the README's
client example does (the photo uploaded with each call, a face, a slider); its photo is scikit-image's
astronaut shifted by (client % 3) * 24 pixels, so some clients upload the same photo and some a different one.

Prints JSON: calls, failures (with the first few errors), calls/s, p50/p95 latency of one call (upload,
render and the downloads of its files), the server process's peak RSS (VmHWM from /proc; psutil elsewhere)
and the disk its folders hold at the end (its working folder: Gradio's copies included).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def build_checkpoint(path: Path, full: bool) -> None:
    from stylecli.encoders.formats.e4e import ModelConfig, default_opts, save_checkpoint

    if full:
        sys.path.insert(0, str(REPO / "bench"))
        from compare import build_model

        save_checkpoint(build_model(), path, default_opts(ModelConfig(1024, "e4e")))
    else:
        sys.path.insert(0, str(REPO / "tests"))
        from conftest import tiny_config, tiny_model

        save_checkpoint(tiny_model(), path, default_opts(tiny_config()))


def photos(root: Path, clients: int) -> list[Path]:
    """Client k's photo: the astronaut on a grey canvas, shifted right by (k % 3) * 24 pixels."""
    from PIL import Image
    from skimage import data

    astronaut = Image.fromarray(data.astronaut())
    out = []
    for k in range(clients):
        path = root / f"astronaut{k % 3}.png"
        if not path.exists():
            canvas = Image.new("RGB", (512 + 48, 512), (200, 200, 200))
            canvas.paste(astronaut, ((k % 3) * 24, 0))
            canvas.save(path)
        out.append(path)
    return out


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident memory: VmHWM from /proc on Linux; elsewhere psutil's (peak_wset on Windows,
    the current RSS where it has no peak) if installed."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    try:
        import psutil

        info = psutil.Process(pid).memory_info()
        return round(getattr(info, "peak_wset", info.rss) / 2**20, 1)
    except Exception:  # noqa: BLE001 - not installed, or the process is gone
        return None


def disk_mb(folder: Path) -> float:
    total = 0
    for dirpath, _, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return round(total / 2**20, 2)


def client_run(url: str, photo: Path, edits: int, slider: str, down: Path, start: threading.Barrier,
               times: list[float], errors: list[str], deadline: float) -> None:
    from gradio_client import Client, handle_file

    try:
        client = Client(url, verbose=False, download_files=str(down))
    except Exception as exc:  # noqa: BLE001 - counted
        errors.extend([f"connect: {exc}"] * edits)
        return
    start.wait()
    for edit in range(edits):
        if time.monotonic() > deadline:
            errors.append("not made: the time limit")
            continue
        t0 = time.perf_counter()
        try:
            status, *_, command, files = client.predict(photo=handle_file(str(photo)), face=0,
                                                        **{slider: float(edit - 1)}, api_name="/edit")
            if status.startswith("**Error") or not files:
                raise RuntimeError(status)
            times.append(time.perf_counter() - t0)
        except Exception as exc:  # noqa: BLE001 - counted
            errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--edits", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="the 1024 px architecture with random weights")
    parser.add_argument("--device", default=None, help="the server's --device (default: cpu for the tiny model)")
    parser.add_argument("--time-limit", type=float, default=600, help="seconds for all calls (default 600)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="serve_load-") as tmp:
        root = Path(tmp)
        build_checkpoint(root / "model.pt", args.full)
        shots = photos(root, args.clients)
        (root / "tmp").mkdir()
        port = free_port()
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1",
               "NO_PROXY": "127.0.0.1,localhost", "TMPDIR": str(root / "tmp"),
               "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        device = args.device or ("cpu" if not args.full else None)
        command = [sys.executable, "-m", "stylecli", "serve", "--checkpoint", str(root / "model.pt"),
                   "--host", "127.0.0.1", "--port", str(port), "--no-browser",
                   *(["--device", device] if device else [])]
        log = root / "server.log"
        with open(log, "w") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root)
        url = f"http://127.0.0.1:{port}/"
        try:
            started = time.monotonic()
            while not answers(url):
                if proc.poll() is not None or time.monotonic() - started > 300:
                    sys.exit(f"the server did not start:\n{log.read_text()}")
                time.sleep(0.3)
            load_s = time.monotonic() - started
            from gradio_client import Client

            api = Client(url, verbose=False).view_api(return_format="dict", print_info=False)
            params = [p["parameter_name"] for p in api["named_endpoints"]["/edit"]["parameters"]]
            slider = next(p for p in params if p.startswith("sefa_"))

            times: list[float] = []
            errors: list[str] = []
            start = threading.Barrier(args.clients)
            deadline = time.monotonic() + args.time_limit
            threads = [threading.Thread(target=client_run, daemon=True,
                                        args=(url, shots[k], args.edits, slider, root / "down" / str(k), start,
                                              times, errors, deadline))
                       for k in range(args.clients)]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join(max(1.0, deadline - time.monotonic() + 30))
            wall = time.perf_counter() - t0
            peak = peak_rss_mb(proc.pid)
            disk = disk_mb(root / "tmp")
            if errors:  # the server's side of the failures
                print(log.read_text()[-4000:], file=sys.stderr)
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        calls = args.clients * args.edits
        ordered = sorted(times)
        print(json.dumps({
            "model": "FFHQ e4e 1024 px, random weights" if args.full else "tiny 32 px e4e (tests), random weights",
            "device": device or "auto", "clients": args.clients, "edits_per_client": args.edits,
            "distinct_photos": len(set(shots)), "server_start_s": round(load_s, 1),
            "calls": calls, "failures": calls - len(times), "errors": errors[:5],
            "wall_s": round(wall, 2), "calls_per_s": round(len(times) / wall, 2),
            "latency_p50_s": round(statistics.median(ordered), 3) if ordered else None,
            "latency_p95_s": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3) if ordered else None,
            "server_peak_rss_mb": peak, "server_disk_mb_at_end": disk,
            "cpus": os.cpu_count()}, indent=2))


if __name__ == "__main__":
    main()
