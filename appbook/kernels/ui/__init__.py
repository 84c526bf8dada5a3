"""Appbook's component library: ipywidgets controls, forms, grids, charts and pages.

>>> from appbook.kernels.ui import show
>>> show("invoices", "all")          # the page of the definition, live, in any notebook
"""

from __future__ import annotations

from .base import FieldControl
from .chart import Chart
from .defaults import CONTROL_KINDS, control_for, default_control
from .form import RecordForm
from .grid import DataGrid
from .listview import ListView
from .page import AppView, PageView, show
from .pivot import PivotGrid
from .runs import RunsView
from .tree import TreeView

__all__ = [
    "CONTROL_KINDS",
    "AppView",
    "Chart",
    "DataGrid",
    "FieldControl",
    "ListView",
    "PageView",
    "PivotGrid",
    "RecordForm",
    "RunsView",
    "TreeView",
    "control_for",
    "default_control",
    "show",
]
