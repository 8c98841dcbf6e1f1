"""Reloading the companies file on SIGHUP, without a restart and without dropping events.

``callbridge serve`` and ``callbridge engine`` reload on SIGHUP (``systemctl reload``,
``docker kill -s HUP``, ``kill -HUP``): the file is read again and validated; when it is
invalid, the error is logged and everything keeps running as it was. When it is valid, the
new companies, tokens, PBX clients and plugin instances are swapped in at once, each process
for itself (``serve`` passes the signal on to its engine child). Events keep being acked all
along: the ingress never stops, and an event of a company the engine has not loaded yet
waits for the engine's reload to bring it (see ``Reactions._await_company``).

Why a signal and not an admin endpoint: it is the Unix way a daemon is told to re-read its
configuration, systemd and Docker send it with no extra set-up, and it needs no new
credential or route to protect: whoever may signal the process may restart it anyway.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

from ..errors import ConfigurationError

log = logging.getLogger("callbridge.companies")


def reload_safely(reload: Callable[[], object], what: str) -> bool:
    """Run ``reload``; an invalid file is logged and changes nothing. True when reloaded."""
    try:
        reload()
    except ConfigurationError as exc:
        log.error("%s: reload refused, the running configuration stays: %s", what, exc)
        return False
    except Exception:
        log.exception("%s: reload failed, the running configuration stays", what)
        return False
    log.info("%s: companies reloaded", what)
    return True


def reload_on_sighup(reload: Callable[[], object], what: str) -> None:
    """Reload in a thread of its own on each SIGHUP (a signal handler must not block).

    Two signals close together run one after the other, never at once.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    lock = threading.Lock()

    def run() -> None:
        with lock:
            reload_safely(reload, what)

    def on_hup(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=run, name="reload", daemon=True).start()

    signal.signal(signal.SIGHUP, on_hup)
