"""Import kserve without letting it parse our command line.

``kserve.model_server`` runs ``argparse.parse_known_args()`` on ``sys.argv`` at import time (and accepts
abbreviated flags), so a ``caig`` flag could silently set a kserve option. Importing it with a bare argv
keeps every server setting explicit in our code.
"""

from __future__ import annotations

import sys
from types import ModuleType


def import_kserve() -> ModuleType:
    """``import kserve`` with ``sys.argv`` reduced to the program name during the import."""
    if "kserve" in sys.modules:
        return sys.modules["kserve"]
    argv = sys.argv
    sys.argv = argv[:1]
    try:
        import kserve
    finally:
        sys.argv = argv
    return kserve
