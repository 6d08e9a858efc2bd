"""stylecli env: versions, devices, where files are kept, which registry files are here."""

from __future__ import annotations

import typer

from stylecli.cli.common import JsonOpt, print_json


def env(as_json: JsonOpt = False) -> None:
    """Print versions, devices, the cache and Hub folders, and which registry files are here.

    The versions of stylecli, Python, torch and the optional packages, the devices `--device auto` chooses from,
    where downloads are kept: what to paste into a bug report.

    \b
    Examples:
      stylecli env
      stylecli env --json
    """
    from stylecli.registry.environment import environment

    info = environment()
    if as_json:
        print_json(info)
        return
    lines = ["versions:"]
    lines += [f"  {name}: {version or 'not installed'}" for name, version in info["versions"].items()]
    dev = info["devices"]
    lines += ["devices:", f"  auto: {dev['auto']}", f"  cuda: {', '.join(dev['cuda']) or 'none'}"
              f" (torch built with CUDA {dev['cuda_build'] or 'none'})", f"  mps: {'yes' if dev['mps'] else 'no'}",
              f"  cpu threads: {dev['cpu_threads']}"]
    lines += ["paths:", *(f"  {k}: {v}" for k, v in info["paths"].items()),
              f"  hub offline: {'yes' if info['hub_offline'] else 'no'}"]
    if info["environment"]:
        lines += ["environment:", *(f"  {k}={v}" for k, v in info["environment"].items())]
    files = info["registry_files"]
    lines += [f"registry files ({sum(p is not None for p in files.values())} of {len(files)} here):"]
    lines += [f"  {name}: {path or 'absent'}" for name, path in files.items()]
    typer.echo("\n".join(lines))
