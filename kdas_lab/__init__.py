"""kdas_lab: KDAS (Knowledge Distillation via Attention Supervision) for polyp segmentation."""

__version__ = "0.1.0"

from kdas_lab.config import Config  # noqa: E402

__all__ = ["Config", "__version__"]
