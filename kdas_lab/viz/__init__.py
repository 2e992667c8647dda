"""Figures and notebook widgets.

Modules (one concept each): ``data_plots`` (samples and dataset statistics), ``attention_plots``
(PVT self-attention and the KDAS attention maps), ``widgets`` (ipywidgets explorers built around pure
functions), ``curves`` (training curves) and ``overlays`` (prediction overlays).
Import the module you need, e.g. ``from kdas_lab.viz import data_plots``.
"""
