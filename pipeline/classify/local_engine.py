"""`seci batch --engine local`: one process, three overlapping stages joined by bounded queues.

1. the engine's producer thread walks and reads the inputs, drops items already done (`--resume`), cuts the
   stream into chunks and tokenizes each one (`Engine.predict_stream`);
2. the calling thread runs the model on one chunk while the next is being prepared;
3. a writer thread runs the deliberate-metaphor rules (spaCy) over the scored chunk, builds the result
   rows and writes them as one part file.

At most about five chunks are alive at once, so memory is bounded whatever the archive size.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.classify.engine import Prediction
    from pipeline.classify.records import ErrorLog, RunSummary
    from pipeline.classify.rows import Scorer
    from pipeline.classify.store import ResultStore
    from pipeline.items import Item


def release_free_memory() -> None:
    """Hand the heap's free pages back to the system (glibc's `malloc_trim`), once per written part.

    Chunks allocate and free large, differently sized buffers (token arrays, activations, Arrow tables); glibc keeps
    the freed ones, so without this a long run's RSS creeps up. It takes milliseconds. A no-op off glibc.
    """
    import contextlib
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(name).malloc_trim(0)


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's per-thread malloc arenas, as MALLOC_ARENA_MAX does, before the worker threads start.

    The batch pipeline's threads each grow an arena that glibc rarely returns, which inflates a long
    run's RSS; two arenas keep it flat at no measurable cost in speed. A no-op off glibc.
    """
    import contextlib
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name and "MALLOC_ARENA_MAX" not in os.environ:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(name).mallopt(-8, arenas)  # -8 is M_ARENA_MAX in malloc.h


def run_local(
    scorer: Scorer,
    chunks: Iterator[list[Item]],
    store: ResultStore,
    errors: ErrorLog,
    summary: RunSummary,
    timings: dict[str, float],
    report: Callable[[], None],
) -> None:
    """Model in this thread, metaphor rules and part writing in a writer thread, input in the engine's producer."""
    scored: queue.Queue[tuple[list[Item], list[Prediction]] | None] = queue.Queue(maxsize=2)
    failure: list[BaseException] = []

    def write() -> None:
        try:
            while (entry := scored.get()) is not None:
                items, predictions = entry
                t0 = time.perf_counter()
                rows, item_errors = scorer.rows(items, predictions)
                t1 = time.perf_counter()
                store.write_part(rows)
                timings["metaphor_and_rows"] += t1 - t0
                timings["write"] += time.perf_counter() - t1
                for error in item_errors:
                    errors.write(error)
                summary.items += len(rows)
                summary.tokens += sum(p.n_tokens for p in predictions)
                summary.parts += 1
                release_free_memory()
                report()
        except BaseException as exc:
            failure.append(exc)
            while scored.get() is not None:  # drain so the model thread never blocks on a dead writer
                pass

    writer = threading.Thread(target=write, name="seci-write", daemon=True)
    writer.start()
    try:
        stream = scorer.engine.predict_stream(chunks, texts_of=lambda items: [item.text for item in items])
        try:
            while True:
                t0 = time.perf_counter()
                entry = next(stream, None)
                # Includes waiting for the producer: a model thread that waits means input is the bottleneck.
                timings["model_thread"] += time.perf_counter() - t0
                if entry is None or failure:
                    break
                scored.put(entry)
        finally:
            stream.close()
    finally:
        scored.put(None)
        writer.join()
    if failure:
        raise failure[0]
