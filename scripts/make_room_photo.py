"""Remake assets/room.jpg from libjxl's HDR test photo (see assets/CREDITS.md).

    apt-get download libjxl-testdata && dpkg -x libjxl-testdata_*.deb /tmp/jxl
    pip install pypng
    python scripts/make_room_photo.py /tmp/jxl/usr/share/libjxl-testdata/jxl/hdr_room.png assets/room.jpg

The original is 16-bit, BT.2020 primaries with the HLG transfer (cICP 9/18/0/1); a plain 8-bit conversion looks
washed out, so it is decoded properly: HLG inverse OETF, the HLG OOTF for a 1000-nit display, BT.2020 to BT.709,
203 nits as white, a soft roll-off of highlights above 0.8, then the sRGB curve. Resized from 676x449 to 640x425
(Lanczos, the size limit of the samples), JPEG quality 88, without EXIF.
"""

from __future__ import annotations

import sys

import numpy as np
import png  # pypng: reads 16-bit PNGs at full depth
from PIL import Image


def main(source: str, target: str) -> None:
    width, height, rows, _ = png.Reader(source).asDirect()
    a = np.vstack([np.asarray(r, dtype=np.float64) for r in rows]).reshape(height, width, 3) / 65535.0
    ka, kb, kc = 0.17883277, 0.28466892, 0.55991073
    scene = np.where(a <= 0.5, a * a / 3.0, (np.exp((a - kc) / ka) + kb) / 12.0)  # HLG inverse OETF
    luma = 0.2627 * scene[..., 0] + 0.6780 * scene[..., 1] + 0.0593 * scene[..., 2]
    display = 1000.0 * scene * np.power(np.maximum(luma, 1e-9), 0.2)[..., None]  # HLG OOTF, 1000-nit display
    to709 = np.array([[1.6605, -0.5876, -0.0728], [-0.1246, 1.1329, -0.0083], [-0.0182, -0.1006, 1.1187]])
    linear = np.clip(display @ to709.T / 203.0, 0, None)  # 203 nits = white
    knee = 0.8
    linear = np.clip(np.where(linear <= knee, linear, knee + (1 - knee) * np.tanh((linear - knee) / (1 - knee))), 0, 1)
    srgb = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(linear, 1 / 2.4) - 0.055)
    picture = Image.fromarray((srgb * 255 + 0.5).astype(np.uint8), "RGB")
    picture.resize((640, round(height * 640 / width)), Image.LANCZOS).save(target, "JPEG", quality=88)


if __name__ == "__main__":
    main(*sys.argv[1:3])
