"""A failure of the array store (a full disk, a read-only filesystem) reported once, in one line.

Orbax and tensorstore report one failed write several times over: each writer thread logs it with its
traceback before the save re-raises it; the abandoned asyncio tasks log it again when they are
collected, often at interpreter exit; and tensorstore's in-flight writes, finishing after their event
loop has closed, raise "Event loop is closed" where nothing can catch it. The save reports the
failure itself, as a CheckpointWriteError, so these repeats are dropped: the writer threads' logs and
the closed-loop errors while a write runs, and, once one has failed, the closed-loop errors and the
collected tasks' I/O errors from then on.

A failed write is given a moment to settle before it is re-raised: writes still in flight would
otherwise go on creating directories under the staging directory after the save has removed it.
"""

import contextlib
import gc
import logging
import os
import re
import sys
import time

# In-flight writes finish within milliseconds of a failure: ample time for them to.
_SETTLE_SECONDS = 0.2


def _os_reason(error: BaseException) -> str | None:
    """The operating system's reason for `error` or one it wraps (tensorstore writes it as
    os_error_code='28' into a ValueError), if any."""
    cause, seen = error, set()
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        code = re.search(r"os_error_code='(\d+)'", str(cause))
        if code:
            return os.strerror(int(code[1]))
        cause = cause.__cause__ or cause.__context__
    return None


def failure_reason(error: BaseException) -> str:
    """Why writing failed, in one line: the operating system's reason where there is one."""
    lines = str(error).strip().splitlines()
    return _os_reason(error) or (lines[0] if lines else type(error).__name__)


class _DropWriterThreadFailures(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "raised an exception" not in record.getMessage()


class _DropCollectedIoFailures(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        failure = record.exc_info[1] if record.exc_info else None
        return not ("exception was never retrieved" in record.getMessage() and failure is not None and _os_reason(failure))


def _drop_closed_loop_errors(previous):
    def hook(unraisable) -> None:
        if not (isinstance(unraisable.exc_value, RuntimeError) and str(unraisable.exc_value) == "Event loop is closed"):
            previous(unraisable)

    hook.drops_closed_loop_errors = True
    return hook


def _settle() -> None:
    time.sleep(_SETTLE_SECONDS)
    gc.collect()  # the abandoned tasks report now, while their reports are dropped


_collected_failures_dropped = False


@contextlib.contextmanager
def reported_once():
    """Runs a write through the array store; if it fails, waits for the writes still in flight and
    drops the store's repeats of the failure, now and later."""
    global _collected_failures_dropped
    threads, quiet = logging.getLogger("absl"), _DropWriterThreadFailures()
    threads.addFilter(quiet)
    previous_hook = sys.unraisablehook
    restore_hook = not getattr(previous_hook, "drops_closed_loop_errors", False)
    if restore_hook:
        sys.unraisablehook = _drop_closed_loop_errors(previous_hook)
    try:
        yield
    except BaseException:
        restore_hook = False  # the failed write's callbacks may still arrive, after this returns
        if not _collected_failures_dropped:
            _collected_failures_dropped = True
            logging.getLogger("asyncio").addFilter(_DropCollectedIoFailures())
        _settle()
        raise
    finally:
        threads.removeFilter(quiet)
        if restore_hook:
            sys.unraisablehook = previous_hook
