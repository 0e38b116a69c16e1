"""Execute every notebook top to bottom (the `make demo` job) and save the executed copies.

Usage: python scripts/run_notebooks.py --out outputs [notebooks/01_txt2img.ipynb ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def default_notebooks() -> list[Path]:
    """The English notebooks, in teaching order. notebooks/zh/ is not run: its code cells are these notebooks'."""
    return sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=ROOT / "outputs")
    ap.add_argument("notebooks", nargs="*", type=Path)
    args = ap.parse_args()
    paths = args.notebooks or default_notebooks()
    out = args.out / "notebooks"
    out.mkdir(parents=True, exist_ok=True)
    failed = []
    for path in paths:
        t0 = time.perf_counter()
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
        try:
            client.execute()
            status = "ok"
        except Exception as exc:  # noqa: BLE001 - report and go on with the next notebook
            status, _ = f"FAILED: {type(exc).__name__}: {str(exc).splitlines()[-1] if str(exc) else ''}", failed.append(path)
        nbformat.write(nb, out / path.name)
        print(f"{path.name}: {status} ({time.perf_counter() - t0:.0f} s) -> {out / path.name}", flush=True)
    files = [p for p in args.out.rglob("*") if p.is_file() and p.suffix in {".png", ".mp4", ".json"}]
    print(f"\n{len(files)} images/videos/configs written under {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
