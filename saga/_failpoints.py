"""Failpoints: named faults a test run can switch on, to drive the saga down its failure paths.

Off unless the worker's environment sets SAGA_FAILPOINTS=on. When on, a step fails or stalls
for users whose email's local part starts with ``fail-<step>`` or ``slow-<step>``, so tests
choose the fault per registration and run side by side.
"""

import os
import time


class InjectedFault(Exception):
    """A permanent failure raised on purpose by a failpoint."""


SLOW_SECONDS = 8.0


def failpoint(step: str, email: str) -> None:
    if os.environ.get("SAGA_FAILPOINTS") != "on":
        return
    local_part = email.split("@", 1)[0].lower()
    if local_part.startswith(f"fail-{step}"):
        raise InjectedFault(f"failpoint fail-{step}")
    if local_part.startswith(f"slow-{step}"):
        time.sleep(SLOW_SECONDS)
