"""sdnb: the helper package behind the Stable Diffusion teaching notebooks.

Each module holds one idea; notebooks import what their lesson needs, e.g.
``from sdnb import txt2img, Txt2ImgParams``.
"""

import logging as _logging

from .errors import SdnbError
from .settings import is_tiny, output_dir, set_tiny

__all__ = ["SdnbError", "is_tiny", "output_dir", "set_tiny", "__version__"]
__version__ = "0.1.0"


class _NoTorchvisionNote(_logging.Filter):
    """transformers notes that image processors fall back to PIL without torchvision: expected here."""

    def filter(self, record: _logging.LogRecord) -> bool:
        return "requires torchvision" not in record.getMessage()


_logging.getLogger("transformers.utils.import_utils").addFilter(_NoTorchvisionNote())
