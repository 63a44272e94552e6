"""Pausing Python's automatic garbage collector around work that keeps many objects alive.

A bulk import's chunk (~40,000 objects) and a GraphQL page (~100,000) stay alive until they are
committed or answered. The automatic collector, counting allocations, collects several times
meanwhile: each time it scans them and moves the survivors to an older generation, and every few
rounds the oldest generation is scanned whole. Freed by reference counting once the work is
done, they need none of it; what they leave of cyclic garbage is young, and the work collects
the young generations itself when done (`collect_young`), if it allocated enough for the
automatic collector to have run meanwhile: a small request (an update) leaves its few objects
to the next collection instead of paying a whole one for them.
"""

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_pauses = 0  # works in this process running with the automatic collector paused
_was_enabled = True


@contextmanager
def young_collections_only() -> Iterator[None]:
    """The automatic collector paused while any such work runs in this process."""
    global _pauses, _was_enabled
    if _pauses == 0:
        _was_enabled = gc.isenabled()
        gc.disable()
    _pauses += 1
    try:
        yield
    finally:
        _pauses -= 1
        if _pauses == 0 and _was_enabled:
            gc.enable()


def collect_young() -> None:
    """The cyclic garbage of work done under `young_collections_only`, once the youngest
    generation holds more than the automatic collector lets it."""
    if gc.get_count()[0] > gc.get_threshold()[0]:
        gc.collect(1)
