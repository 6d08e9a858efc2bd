"""Latent edits: every kind is a function from W+ codes and a strength to W+ codes (see base.Edit)."""

from stylecli.editing.base import Edit, apply_edits, parse_layers
from stylecli.editing.catalog import check_domain, model_domain, named_directions
from stylecli.editing.conditional import condition, condition_edits, conditioned_edit
from stylecli.editing.learn import fit_direction, learn_from_inputs, save_direction
from stylecli.editing.resolve import resolve_edit

__all__ = ["Edit", "apply_edits", "check_domain", "condition", "condition_edits", "conditioned_edit",
           "fit_direction", "learn_from_inputs", "model_domain", "named_directions", "parse_layers", "resolve_edit",
           "save_direction"]
