"""kdas_lab: KDAS (Knowledge Distillation via Attention Supervision) for polyp segmentation."""

from importlib.metadata import version

from kdas_lab.config import Config

__version__ = version("kdas_lab")  # its one home is pyproject.toml (modules read it the same way, not from here)
__all__ = ["Config", "__version__", "notebook_setup"]


def __getattr__(name: str):
    # Lazy (PEP 562): the data tools import kdas_lab without torch or matplotlib, which the notebook helper loads.
    if name == "notebook_setup":
        from kdas_lab.course.setup import notebook_setup  # noqa: PLC0415

        return notebook_setup
    raise AttributeError(f"module 'kdas_lab' has no attribute {name!r}")
