"""Contact lookups for pops: cached, one request per number at a time, within a time budget.

``lookup`` asks each ``lookup_contact`` plugin for the call's number. Cached answers come at
once; the others run on a small pool, and two calls from the same number share one request.
What is not back within ``dispatch.lookup_budget`` is left out of this pop (and cached when
it comes back, for the answer event and the next call). The contacts found for a call are
kept until it is settled, so its later pops and its log record need no CRM request.

Companies are kept apart here: each company has its own pool and its own cache (a flood of
company A's numbers never evicts company B's contacts, and A's lookups never take B's
threads), and a plugin instance whose lookups already missed the budget and still hang (a
CRM outage) is not waited for again until one comes back: the pops of its company go out
at once, without it, instead of holding a lane for the whole budget each time (the lookup
is still asked, and its answer cached for the answer pop and the next call).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait

from .. import metrics
from ..models import Call, Contact
from ..plugins.manager import Plugins
from ..settings import DispatchSettings
from .cache import MISSING, TTLCache, _Missing
from .common import describe

log = logging.getLogger("callbridge.engine.dispatcher.lookups")


def number_of(call: Call) -> str:
    """The number a lookup asks for: E.164 when known, else as the PBX gave it."""
    return call.remote_e164 or call.remote_number.strip()


class CompanyCaches(TTLCache[tuple[str, str], Contact | None]):
    """One lookup cache per company, each ``maxsize`` entries, chosen by the plugin's company."""

    def __init__(self, plugins: Plugins, maxsize: int) -> None:
        super().__init__(0)
        self._plugins = plugins
        self._each = maxsize
        self._caches: dict[str | None, TTLCache[tuple[str, str], Contact | None]] = {}
        self._caches_lock = threading.Lock()

    def _for(self, key: tuple[str, str]) -> TTLCache[tuple[str, str], Contact | None]:
        company = self._plugins.company_of(key[0])
        with self._caches_lock:
            cache = self._caches.get(company)
            if cache is None:
                cache = self._caches[company] = TTLCache(self._each)
            return cache

    def get(self, key: tuple[str, str]) -> Contact | _Missing | None:
        """The cached answer of plugin ``key[0]`` for number ``key[1]``, or ``MISSING``."""
        return self._for(key).get(key)

    def set(self, key: tuple[str, str], value: Contact | None, ttl: float) -> None:
        """Cache an answer in its plugin's company's cache."""
        self._for(key).set(key, value, ttl)

    def clear(self) -> None:
        """Forget every company's answers."""
        with self._caches_lock:
            caches = list(self._caches.values())
        for cache in caches:
            cache.clear()

    def __len__(self) -> int:
        with self._caches_lock:
            caches = list(self._caches.values())
        return sum(len(cache) for cache in caches)


class Lookups:
    """The lookup cache, the lookups running now, and the contacts of open calls."""

    def __init__(self, plugins: Plugins, settings: DispatchSettings, *, pool_size: int) -> None:
        self.plugins = plugins
        self.settings = settings
        self.cache: TTLCache[tuple[str, str], Contact | None] = CompanyCaches(
            plugins, settings.cache_size
        )
        self._pool_size = pool_size
        self._pools: dict[str | None, ThreadPoolExecutor] = {}
        self._closed = False
        #: Plugin -> its lookups that missed the budget and are still running.
        self._late: dict[str, int] = {}
        self._running: dict[tuple[str, str], Future[Contact | None]] = {}
        self._running_lock = threading.Lock()
        self._by_call: dict[str, dict[str, Contact]] = {}
        self._by_call_lock = threading.Lock()

    def close(self) -> None:
        """Drop lookups not started yet; running ones finish on their own."""
        with self._running_lock:
            self._closed = True
            pools = list(self._pools.values())
        for pool in pools:
            pool.shutdown(wait=False, cancel_futures=True)

    def _pool_for(self, name: str) -> ThreadPoolExecutor:
        """The pool of plugin ``name``'s company (made on first use); call with the lock."""
        if self._closed:
            raise RuntimeError("lookups are closed")
        company = self.plugins.company_of(name)
        pool = self._pools.get(company)
        if pool is None:
            pool = ThreadPoolExecutor(
                max_workers=self._pool_size, thread_name_prefix=f"lookup-{company}"
            )
            self._pools[company] = pool
        return pool

    def stalled(self, name: str) -> bool:
        """Whether plugin ``name`` has lookups that missed the budget and still run."""
        with self._running_lock:
            return self._late.get(name, 0) > 0

    def ttl(self, name: str, contact: Contact | None) -> float:
        """How long plugin ``name``'s answer stays cached (a "no match" for less time)."""
        default = (
            self.settings.cache_ttl if contact is not None else self.settings.cache_negative_ttl
        )
        return self.plugins.lookup_ttl(name, contact is not None, default)

    # -- per call -------------------------------------------------------------------------
    def remember(self, key: str, contacts: dict[str, Contact]) -> None:
        """Keep the contacts found for call ``key`` until it is settled."""
        with self._by_call_lock:
            self._by_call[key] = contacts

    def forget(self, key: str) -> None:
        """The call is settled: its contacts are no longer needed."""
        with self._by_call_lock:
            self._by_call.pop(key, None)

    def remembered(self, key: str) -> dict[str, Contact] | None:
        """The contacts kept for call ``key``, if any."""
        with self._by_call_lock:
            return self._by_call.get(key)

    def known(self, call: Call) -> dict[str, Contact]:
        """Contacts already found for the call, or cached for its number: no CRM request."""
        known = self.remembered(call.key)
        names = self.plugins.implementers("lookup_contact", call.company)
        number = number_of(call)
        result = dict(known or {})
        for name in names:
            if name in result or not number:
                continue
            cached = self.cache.get((name, number))
            if isinstance(cached, Contact):
                result[name] = cached
        if result != (known or {}):
            self.remember(call.key, result)
        return {name: result[name] for name in names if name in result}

    # -- asking the plugins ---------------------------------------------------------------
    def lookup(self, call: Call) -> dict[str, Contact]:
        """Each plugin's contact for the call's number, within the lookup budget."""
        names = self.plugins.implementers("lookup_contact", call.company)
        number = number_of(call)
        if not names or not number:
            return {}
        found: dict[str, Contact] = {}
        waiting: dict[Future[Contact | None], str] = {}
        for name in names:
            cached = self.cache.get((name, number))
            if cached is MISSING and self.stalled(name):
                # Its CRM hangs: ask all the same (the answer is cached for the answer pop
                # and the next call), on this company's pool, but do not wait for it.
                self._start(name, number, call)
                metrics.LOOKUPS.labels(name, "skipped").inc()
                continue
            if cached is MISSING:
                future = self._start(name, number, call)
                if future is not None:
                    waiting[future] = name
                continue
            metrics.LOOKUPS.labels(name, "cache_hit").inc()
            if isinstance(cached, Contact):
                found[name] = cached
        if waiting:
            found.update(self._collect(waiting, call))
        return {name: found[name] for name in names if name in found}

    def _collect(
        self, waiting: dict[Future[Contact | None], str], call: Call
    ) -> dict[str, Contact]:
        """What the running lookups return within the budget; the late ones are counted."""
        budget = self.settings.lookup_budget
        done, late = wait(waiting, timeout=budget)
        found: dict[str, Contact] = {}
        for future in done:
            contact = future.result()
            if contact is not None:
                found[waiting[future]] = contact
        for future in late:
            self._note_late(waiting[future], future)
            metrics.LOOKUPS.labels(waiting[future], "timeout").inc()
            log.info(
                "lookup by %s missed the %.1fs budget for call %s; popping without it",
                waiting[future],
                budget,
                call.key,
            )
        return found

    def _note_late(self, name: str, future: Future[Contact | None]) -> None:
        """Count a lookup that missed the budget until it comes back."""
        with self._running_lock:
            self._late[name] = self._late.get(name, 0) + 1

        def back(_: Future[Contact | None]) -> None:
            with self._running_lock:
                self._late[name] = self._late.get(name, 1) - 1

        future.add_done_callback(back)

    def _start(self, name: str, number: str, call: Call) -> Future[Contact | None] | None:
        """Run a lookup on the pool, or join the one already running for the same number."""
        key = (name, number)
        with self._running_lock:
            future = self._running.get(key)
            if future is not None:
                return future
            cached = self.cache.get(key)
            if cached is not MISSING:  # a lookup finished since we looked (it caches first)
                done: Future[Contact | None] = Future()
                done.set_result(cached if isinstance(cached, Contact) else None)
                return done
            try:
                future = self._pool_for(name).submit(self._one, name, number, call)
            except RuntimeError:  # the pool is shut down: we are stopping
                return None
            self._running[key] = future

        def forget(_: Future[Contact | None]) -> None:
            with self._running_lock:
                if self._running.get(key) is future:
                    del self._running[key]

        future.add_done_callback(forget)
        return future

    def _one(self, name: str, number: str, call: Call) -> Contact | None:
        """One plugin's lookup; errors are logged and not cached (the next call tries again)."""
        try:
            result = self.plugins.lookup_contact(name, number, call)
        except Exception as exc:
            metrics.LOOKUPS.labels(name, "error").inc()
            log.warning("lookup by %s failed: %s", name, describe(exc))
            return None
        contact: Contact | None = None
        if isinstance(result, Contact):
            contact = result if result.connector else result.model_copy(update={"connector": name})
        elif result is not None:
            log.warning("lookup by %s returned %s, not a Contact", name, type(result).__name__)
            return None
        metrics.LOOKUPS.labels(name, "found" if contact is not None else "not_found").inc()
        self.cache.set((name, number), contact, self.ttl(name, contact))
        return contact
