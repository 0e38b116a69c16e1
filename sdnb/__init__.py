"""sdnb: the helper package behind the Stable Diffusion teaching notebooks.

Each module holds one idea; notebooks import what their lesson needs, e.g.
``from sdnb import txt2img, Txt2ImgParams``.
"""

from .errors import SdnbError
from .settings import is_tiny, output_dir, set_tiny

__all__ = ["SdnbError", "is_tiny", "output_dir", "set_tiny", "__version__"]
__version__ = "0.1.0"
