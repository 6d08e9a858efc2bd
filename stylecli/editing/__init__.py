"""Latent edits: every kind is a function from W+ codes and a strength to W+ codes (see base.Edit)."""

from stylecli.editing.base import Edit, apply_edits, parse_layers
from stylecli.editing.resolve import resolve_edit

__all__ = ["Edit", "apply_edits", "parse_layers", "resolve_edit"]
