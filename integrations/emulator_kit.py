"""What every platform emulator shares: fault injection, in one place."""

from __future__ import annotations

import threading
from typing import Any, ClassVar


class FaultInjection:
    """``set_fault(kind, times=1, after=0, **options)``: faults apply one at a time in the order set, each
    after ``after`` unaffected requests and for ``times`` requests; ``_next_fault()`` gives the fault for the
    current request (or None). Subclasses list their kinds in ``FAULTS`` and create ``_lock`` (an RLock)
    and ``_faults`` (a list) in ``__init__``."""

    FAULTS: ClassVar[tuple[str, ...]] = ()
    _lock: threading.RLock
    _faults: list[dict[str, Any]]

    def set_fault(self, kind: str, *, times: int = 1, after: int = 0, **options: Any) -> None:
        if kind not in self.FAULTS:
            raise ValueError(f"Unknown fault {kind!r}; one of {self.FAULTS}.")
        with self._lock:
            self._faults.append({"kind": kind, "times": times, "after": after, **options})

    def _next_fault(self) -> dict[str, Any] | None:
        with self._lock:
            if not self._faults:
                return None
            fault = self._faults[0]
            if fault["after"] > 0:
                fault["after"] -= 1
                return None
            fault["times"] -= 1
            if fault["times"] <= 0:
                self._faults.pop(0)
            return fault
