"""Owns which campuses are loaded: all served campuses are known, loaded on use, LRU-evicted."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from campus_maps import (
    Campus,
    CampusConfig,
    UnknownCampusError,
    campus_ids,
    default_maps_dir,
    load_campus_config,
)
from campus_maps.campus import map_meta_path, tables_cached
from campus_maps.config import DATA_DIR, campus_folders, file_digest
from campus_maps.matrices import register_campus, unregister_campus
from campus_maps.tables import default_cache_dir
from server.config import ServerConfig
from server.metrics import Metrics

LOG = logging.getLogger("campus_dispatch.campuses")

#: Retry hint of a campus being built (a build takes seconds).
BUILD_RETRY_S = 1.0

__all__ = [
    "CampusFailedError",
    "CampusLoadingError",
    "CampusRegistry",
    "CampusSummary",
    "LoadOutcome",
    "UnknownCampusError",
    "table_bytes",
]


class CampusLoadingError(Exception):
    """The campus is known but its travel tables are being built: try again later."""

    def __init__(self, campus_id: str, retry_after_s: float) -> None:
        self.campus_id, self.retry_after_s = campus_id, retry_after_s
        super().__init__(
            f"campus {campus_id!r} is loading (its travel tables are being built); "
            f"retry in {retry_after_s:g} s"
        )


class CampusFailedError(Exception):
    """The campus's settings or map could not be loaded (fixed by a LoadCampus reload)."""

    def __init__(self, campus_id: str, reason: str) -> None:
        self.campus_id, self.reason = campus_id, reason
        super().__init__(f"campus {campus_id!r} failed to load: {reason}")


@dataclass(frozen=True)
class CampusSummary:
    """What ListCampuses says about one campus (cheap for a campus not loaded)."""

    id: str
    name: str
    loaded: bool
    bounds: tuple[float, float, float, float] | None


@dataclass(frozen=True)
class LoadOutcome:
    """The answer of :meth:`CampusRegistry.load`."""

    campus_id: str
    loaded: bool
    detail: str


@dataclass
class _Entry:
    campus: Campus
    nbytes: int


def table_bytes(campus: Campus) -> int:
    """Bytes of the campus's travel tables: every array of every mode's tables."""
    return campus.load_tables()


def maps_dir_of(config: ServerConfig) -> Path:
    """The maps directory of onboarded campuses ``config`` names."""
    return Path(config.maps_dir).expanduser() if config.maps_dir else default_maps_dir()


def _ready(campus: Campus) -> Campus:
    """Every mode's network (memory-mapped or built) and the places: nothing left for a
    request to load."""
    campus.load_tables()
    campus.places()
    return campus


class CampusRegistry:
    """The campuses a server serves: bundled ones (``serve_bundled``), those in ``maps_dir``,
    and ``extra`` ids (loaded at start, the default campus); loaded on first use, least
    recently used dropped past ``max_loaded_campuses`` / ``max_loaded_bytes``.

    A campus whose tables are in the on-disk cache loads on the calling thread (memory-mapped:
    milliseconds); one whose tables are not yet built is built by one background thread, one
    campus at a time, while :meth:`get` raises :class:`CampusLoadingError`.

    Parameters
    ----------
    current
        Called for the configuration in force (``maps_dir``, ``serve_bundled``, the caps,
        ``default_campus``: all read at each use).
    """

    def __init__(
        self,
        current: Callable[[], ServerConfig],
        metrics: Metrics,
        *,
        extra: Collection[str] = (),
        data_dir: Path = DATA_DIR,
        cache_root: Path | None = None,
    ) -> None:
        self.current = current
        self.metrics = metrics
        self.data_dir = data_dir
        self.cache_root = cache_root or default_cache_dir()
        self._extra = set(extra)
        self._loaded: OrderedDict[str, _Entry] = OrderedDict()
        self._building: dict[str, Future[None]] = {}
        self._reload_after_build: set[str] = set()
        self._failed: dict[str, str] = {}
        self._lock = threading.Lock()
        self._id_locks: dict[str, threading.Lock] = {}
        self._builder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="campus-build")
        self._summaries: dict[str, tuple[tuple[float, ...], CampusSummary]] = {}
        metrics.campuses_loaded.set_function(lambda: len(self._loaded))
        metrics.campus_loaded_bytes.set_function(
            lambda: sum(e.nbytes for e in list(self._loaded.values()))
        )

    # ------------------------------------------------------------------ what is served
    @property
    def maps_dir(self) -> Path:
        """The maps directory in force."""
        return maps_dir_of(self.current())

    def known(self) -> list[str]:
        """Ids of every campus served, sorted (the maps directory is scanned again: a folder
        glob)."""
        ids = set(self._extra) | set(self._loaded)
        if self.current().serve_bundled:
            ids |= set(campus_ids(self.data_dir))
        ids |= campus_folders(self.maps_dir)
        return sorted(ids)

    def loaded(self) -> dict[str, Campus]:
        """The campuses loaded now, by id."""
        with self._lock:
            return {cid: e.campus for cid, e in self._loaded.items()}

    def is_loaded(self, campus_id: str) -> bool:
        """Whether ``campus_id`` is loaded now."""
        return campus_id in self._loaded

    def building(self) -> list[str]:
        """Ids of the campuses being built or waiting for the builder."""
        with self._lock:
            return sorted(self._building)

    def add(self, campus: Campus) -> None:
        """Serve an already loaded campus (e.g. one loaded at start)."""
        self._extra.add(campus.id)
        self._insert(campus)

    def _config(self, campus_id: str) -> CampusConfig:
        return load_campus_config(campus_id, data_dir=self.data_dir, maps_dir=self.maps_dir)

    # ------------------------------------------------------------------------- get
    def get(self, campus_id: str) -> Campus:
        """The loaded campus ``campus_id`` (loaded now if its tables are cached).

        Raises
        ------
        UnknownCampusError
            This server does not serve it (``known`` lists those it does).
        CampusLoadingError
            Its tables are being built (a build starts on the first request).
        CampusFailedError
            Its settings or map are broken.
        """
        with self._lock:
            entry = self._loaded.get(campus_id)
            if entry is not None:
                self._loaded.move_to_end(campus_id)
                return entry.campus
        return self._load(campus_id, reload=False)[0]

    def load(self, campus_id: str, *, reload: bool = False) -> LoadOutcome:
        """Load ``campus_id`` now (the admin LoadCampus); ``reload``: load it again from its
        folder even if loaded, swapping the new tables in once ready. Raises like :meth:`get`,
        except for a campus being built (``loaded=False`` then)."""
        if reload:
            with self._lock:
                self._failed.pop(campus_id, None)
        elif self.is_loaded(campus_id):
            return LoadOutcome(campus_id, True, "already loaded")
        try:
            campus, detail = self._load(campus_id, reload=reload)
        except CampusLoadingError:
            if reload:  # load again once the build in progress (of the old files) is done
                with self._lock:
                    self._reload_after_build.add(campus_id)
            return LoadOutcome(
                campus_id,
                False,
                "its travel tables are being built in the background; Solve answers "
                "UNAVAILABLE until they are ready",
            )
        return LoadOutcome(campus.id, True, detail)

    def _load(self, campus_id: str, *, reload: bool) -> tuple[Campus, str]:
        with self._lock:
            if campus_id in self._failed:
                raise CampusFailedError(campus_id, self._failed[campus_id])
            if campus_id in self._building:
                raise CampusLoadingError(campus_id, self._retry_s())
            id_lock = self._id_locks.setdefault(campus_id, threading.Lock())
        known = self.known()
        if campus_id not in known:
            raise UnknownCampusError(campus_id, known)
        with id_lock:  # one synchronous load per campus; the others wait for it
            if not reload:
                with self._lock:
                    entry = self._loaded.get(campus_id)
                    if entry is not None:
                        self._loaded.move_to_end(campus_id)
                        return entry.campus, "already loaded"
            started = time.perf_counter()
            try:
                config = self._config(campus_id)
                cached = tables_cached(config, self.cache_root)
                if cached:
                    campus = _ready(Campus(config, cache_dir=self.cache_root))
            except (
                Exception
            ) as exc:  # a broken campus folder or cache: this campus fails, not the call
                self._fail(campus_id, exc)
                raise CampusFailedError(campus_id, f"{type(exc).__name__}: {exc}") from None
            if not cached:
                self._start_build(campus_id, config)
                raise CampusLoadingError(campus_id, self._retry_s())
            elapsed = time.perf_counter() - started
            self._loaded_now(campus, "cached", elapsed, reload=reload)
            return campus, f"loaded from the travel-table cache in {elapsed * 1000:.0f} ms"

    def _retry_s(self) -> float:
        return BUILD_RETRY_S

    def _fail(self, campus_id: str, exc: BaseException) -> None:
        with self._lock:
            self._failed[campus_id] = str(exc)
        self.metrics.campus_loads.labels(campus_id, "failed").inc()
        LOG.error(json.dumps({"event": "campus_failed", "campus": campus_id, "error": str(exc)}))

    def _start_build(self, campus_id: str, config: CampusConfig) -> None:
        with self._lock:
            if campus_id in self._building:
                return
            future: Future[None] = Future()
            self._building[campus_id] = future
        LOG.info(json.dumps({"event": "campus_build_queued", "campus": campus_id}))
        self._builder.submit(self._build, campus_id, config, future)

    def _build(self, campus_id: str, config: CampusConfig, future: Future[None]) -> None:
        started = time.perf_counter()
        try:
            campus = _ready(Campus(config, cache_dir=self.cache_root))
        except Exception as exc:  # a broken map must not take the builder down
            with self._lock:
                self._building.pop(campus_id, None)
            self._fail(campus_id, exc)
            future.set_exception(exc)
            return
        # loaded before it stops counting as building, so no request loads a second copy
        self._loaded_now(campus, "built", time.perf_counter() - started, reload=False)
        with self._lock:
            self._building.pop(campus_id, None)
            again = campus_id in self._reload_after_build
            self._reload_after_build.discard(campus_id)
        future.set_result(None)
        if again:  # a reload asked for while this build ran: the files may have changed since
            with contextlib.suppress(Exception):  # its outcome is logged and counted by load()
                self.load(campus_id, reload=True)

    def _loaded_now(self, campus: Campus, result: str, elapsed: float, *, reload: bool) -> None:
        nbytes = self._insert(campus)
        self.metrics.campus_loads.labels(campus.id, result).inc()
        LOG.info(
            json.dumps(
                {
                    "event": "campus_loaded",
                    "campus": campus.id,
                    "result": result,
                    "reload": reload,
                    "bytes": nbytes,
                    "load_ms": round(elapsed * 1000, 1),
                }
            )
        )

    def _insert(self, campus: Campus) -> int:
        """Make ``campus`` the loaded copy of its id (replacing an older one), then evict."""
        nbytes = table_bytes(campus)
        with self._lock:
            old = self._loaded.pop(campus.id, None)
            self._loaded[campus.id] = _Entry(campus, nbytes)
            self._failed.pop(campus.id, None)
        if old is not None and old.campus is not campus:
            unregister_campus(old.campus)
        register_campus(campus)
        self._evict(keep=campus.id)
        return nbytes

    def _evict(self, keep: str) -> None:
        """Drop least recently used campuses past the caps (never the default campus, nor
        ``keep``, the one just loaded)."""
        config = self.current()
        max_count, max_bytes = config.max_loaded_campuses, config.max_loaded_bytes
        default = config.default_campus
        dropped = []
        with self._lock:
            while len(self._loaded) > max_count or (
                sum(e.nbytes for e in self._loaded.values()) > max_bytes
            ):
                victim = next((c for c in self._loaded if c not in (default, keep)), None)
                if victim is None:
                    break
                dropped.append(self._loaded.pop(victim))
        for entry in dropped:
            unregister_campus(entry.campus)
            self.metrics.campus_evictions.inc()
            LOG.info(json.dumps({"event": "campus_evicted", "campus": entry.campus.id}))

    def trim(self) -> None:
        """Apply the caps in force now (after a configuration change)."""
        self._evict(keep="")

    # ------------------------------------------------------------------- summaries
    def summaries(self) -> list[CampusSummary]:
        """Every campus served: loaded ones in full, others with what is cheap to know (name
        from campus.toml, bounds if the map's bounds are in the cache)."""
        out = []
        loaded = self.loaded()
        for campus_id in self.known():
            campus = loaded.get(campus_id)
            if campus is not None:
                out.append(CampusSummary(campus_id, campus.name, True, campus.bounds))
            else:
                out.append(self._summary(campus_id))
        return out

    def _summary(self, campus_id: str) -> CampusSummary:
        try:
            config = self._config(campus_id)
            stamp = (config.osm_path.stat().st_mtime, config.osm_path.stat().st_size)
        except Exception:  # a broken campus folder still gets a line in ListCampuses
            return CampusSummary(campus_id, campus_id, False, None)
        memo = self._summaries.get(campus_id)
        if memo is not None and memo[0] == stamp and memo[1].name == config.name:
            return memo[1]
        bounds = None
        try:
            meta = map_meta_path(self.cache_root / campus_id, file_digest(config.osm_path))
            data: Mapping[str, Any] = json.loads(meta.read_text())
            lo_lat, lo_lng, hi_lat, hi_lng = (float(v) for v in data["bounds"])
            bounds = (lo_lat, lo_lng, hi_lat, hi_lng)
        except (OSError, ValueError, KeyError, TypeError):
            pass
        summary = CampusSummary(campus_id, config.name, False, bounds)
        self._summaries[campus_id] = (stamp, summary)
        return summary

    def close(self) -> None:
        """Stop the builder (a build in progress is abandoned)."""
        self._builder.shutdown(wait=False, cancel_futures=True)
