"""Appbook's component library: ipywidgets controls, forms, grids and pages.

>>> from appbook.kernels.ui import show
>>> show("invoices", "all")          # the page of the definition, live, in any notebook
"""

from __future__ import annotations

from .base import FieldControl
from .defaults import CONTROL_KINDS, control_for, default_control
from .form import RecordForm
from .grid import DataGrid
from .page import AppView, PageView, show

__all__ = [
    "CONTROL_KINDS",
    "AppView",
    "DataGrid",
    "FieldControl",
    "PageView",
    "RecordForm",
    "control_for",
    "default_control",
    "show",
]
