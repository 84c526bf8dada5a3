"""Appbook's component library: ipywidgets controls, forms, grids and pages."""
