"""Build the API reference of ``lava_qpsnn`` and ``netx_export`` from their docstrings, with pdoc.

Every module is listed (pdoc follows a package's ``__all__``, which names functions, not its
modules), docstrings are read as numpy style, and any warning fails the build.

    .venv/bin/python docs/build_api.py [OUT]      (default: build/docs; `make docs`)
"""

from __future__ import annotations

import os
import pkgutil
import sys
import warnings
from pathlib import Path


def modules() -> list[str]:
    """Both packages and every module inside them but the command entry points."""
    import lava_qpsnn
    import netx_export

    for name in lava_qpsnn.__all__:  # load the names the package loads on first use (its Lava processes)
        getattr(lava_qpsnn, name)
    names = []
    for package in (lava_qpsnn, netx_export):
        names.append(package.__name__)
        found = pkgutil.walk_packages(package.__path__, f"{package.__name__}.")
        names += [m.name for m in found if not m.name.endswith(".__main__")]  # running those runs the command
    return sorted(names)


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "build/docs")
    os.environ["PDOC_ALLOW_EXEC"] = "1"  # imported libraries (torch) ask the platform for facts
    import pdoc

    pdoc.render.configure(docformat="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # pdoc also adds a package's modules whose names its __all__ lists: listing them again is harmless
        warnings.filterwarnings("ignore", message="The module specification .* has already been added")
        # annotations of Lava's own classes that our processes inherit: Lava's to fix, not ours
        warnings.filterwarnings("ignore", message=r"Error parsing type annotation .* for lava\.")
        pdoc.pdoc(*modules(), output_directory=out)
    print(f"API reference: {out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
