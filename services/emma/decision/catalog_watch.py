"""Hot reload: polls the catalog file and swaps in a new catalog only when it is valid."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

from emma.decision.catalog import Catalog, CatalogError, load_catalog

log = logging.getLogger(__name__)

# What identifies a version of the file without reading it: an editor's rename-over-save
# changes the inode, an in-place write the mtime or the size.
Signature = tuple[int, int, int] | None


def signature(path: Path) -> Signature:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


class CatalogWatcher:
    """Checks the file every `interval_s`; a changed, valid file is handed to `install`.

    A changed file that does not validate leaves the current catalog in place and is
    logged once with every problem; it is read again only when it changes again.
    """

    def __init__(
        self,
        path: Path,
        install: Callable[[Catalog], None],
        *,
        fallback_offer_id: str = "",
        interval_s: float = 1.0,
    ) -> None:
        self.path = path
        self.install = install
        self.fallback_offer_id = fallback_offer_id
        self.interval_s = interval_s
        self._seen = signature(path)
        self.reloads = 0
        self.rejected = 0

    def poll(self) -> Catalog | None:
        """Reads the file if it changed; the new catalog when it is valid, else None."""
        current = signature(self.path)
        if current == self._seen:
            return None
        self._seen = current
        try:
            return load_catalog(self.path, self.fallback_offer_id)
        except CatalogError as error:
            self.rejected += 1
            log.error(
                "catalog rejected, keeping the current one",
                extra={"catalog": str(self.path), "errors": error.lines},
            )
            return None

    def _swap(self, catalog: Catalog) -> None:
        self.install(catalog)
        self.reloads += 1
        log.info(
            "catalog reloaded",
            extra={
                "catalog": str(self.path),
                "offers": len(catalog.offers),
                "segments": len(catalog.segments),
                "caps": len(catalog.policy.caps),
                "fallback": catalog.fallback.offer_id,
            },
        )

    def check(self) -> bool:
        """One poll in the caller's thread: True when a new catalog was installed."""
        catalog = self.poll()
        if catalog is not None:
            self._swap(catalog)
        return catalog is not None

    async def run(self) -> None:
        """Polls until cancelled. The file is read off the event loop; the swap happens on
        it, between two requests' reads of the catalog."""
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                catalog = await asyncio.to_thread(self.poll)
            except Exception:  # a watcher that dies would silently stop reloads
                log.exception("catalog check failed", extra={"catalog": str(self.path)})
                continue
            if catalog is not None:
                self._swap(catalog)
