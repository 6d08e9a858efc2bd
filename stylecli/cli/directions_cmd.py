"""directions: the edits a model offers, with their meaning and range."""

from __future__ import annotations

from stylecli.cli import app
from stylecli.cli.common import JsonOpt, ModelOpt, print_rows


@app.command()
def directions(
    model: ModelOpt = "e4e_ffhq",
    as_json: JsonOpt = False,
) -> None:
    """List the edit directions available for a model, with their meaning and typical range.

    Example: stylecli directions --model e4e_ffhq
    """
    from stylecli import weights
    from stylecli.editing.ganspace import NAMED_EDITS
    from stylecli.editing.resolve import INTERFACEGAN

    # Published directions exist for FFHQ (InterFaceGAN, GANSpace) and cars (GANSpace); SeFa and your own
    # files work for every model (horse, church, custom).
    domain = next((d for d in ("ffhq", "cars") if d in model.lower()), None)
    rows = []
    if domain == "ffhq":
        registry = weights.load_registry()
        for name, what in INTERFACEGAN.items():
            if name not in registry:  # a private registry (STYLECLI_WEIGHTS_TOML) may leave it out
                where = "not in the weights registry"
            elif weights.status(registry[name])["present"]:
                where = "here"
            else:
                where = f"downloaded on first use ({name}.pt)"
            rows.append({"name": name, "kind": "interfacegan", "default": 3.0, "layers": "all", "about": what,
                         "file": where})
    if domain is not None:
        pca = f"{domain}_pca"
        for name, (comp, start, end, value) in NAMED_EDITS[pca].items():
            rows.append({"name": f"ganspace:{name}", "kind": "ganspace", "default": value,
                         "layers": f"{start}-{end - 1}", "file": pca,
                         "about": f"PCA component {comp}; strength = target coordinate"})
        rows.append({"name": "ganspace:N", "kind": "ganspace", "default": 0.0, "layers": "--layers required",
                     "about": "any PCA component N (0-79)", "file": pca})
    rows.append({"name": "sefa:K", "kind": "sefa", "default": 3.0, "layers": "all or --layers",
                 "about": "K-th closed-form direction of the generator (0 = strongest); about -10..10",
                 "file": "none (from the model)"})
    rows.append({"name": "PATH.pt|PATH.npy", "kind": "file", "default": 3.0, "layers": "all or --layers",
                 "about": "your own direction: [512], [1, 512], [n_styles, 512] or [1, n_styles, 512]",
                 "file": "yours"})
    print_rows(rows, {"direction": lambda r: r["name"], "default strength": lambda r: f"{r['default']:g}",
                      "layers": lambda r: r["layers"], "meaning": lambda r: r["about"], "file": lambda r: r["file"]},
               as_json)
