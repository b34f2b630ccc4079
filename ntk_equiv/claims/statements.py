"""Moved: the claims C1-C9 are data in :mod:`.claims` (``CLAIMS``); this name
stays only for check modules that still import it, and does nothing."""
from .claims import CLAIMS  # noqa: F401
