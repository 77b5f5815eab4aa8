"""Human-readable logging for the CLI and the pipeline steps."""

from __future__ import annotations

import logging
import sys


def setup_logging(verbose: bool = False) -> None:
    """Log ``HH:MM:SS level logger: message`` lines to stderr; INFO by default, DEBUG with verbose."""
    level = logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-5s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("urllib3", "matplotlib", "PIL", "filelock", "httpx", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
