"""Nearest-point search on the sphere: latitude bands over precomputed unit vectors."""

from __future__ import annotations

import bisect
import math

import numpy as np
import numpy.typing as npt

from emma.context.geo import EARTH_RADIUS_M, distance_m, haversine_m

# Ranking by dot product is exact up to rounding (~1e-16); every point within this margin
# of the cut-off is re-ranked by its haversine distance, so the result equals brute force.
_DOT_MARGIN = 1e-12
# Below this many candidates scalar distances beat numpy calls on tiny arrays.
_FEW = 16
# The first band is this many degrees of latitude either side of the query point (some
# 30 km); each further try widens it fourfold.
_FIRST_BAND_DEG = 0.25


def unit_vectors(
    latitudes: npt.NDArray[np.float64], longitudes: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """(3, n) unit vectors of points given in degrees, one row per axis.

    Rows, not columns: numpy multiplies a 3-vector with a (3, n) array some eight times
    faster than an (n, 3) array with a 3-vector.
    """
    lat, lon = np.radians(latitudes), np.radians(longitudes)
    cos_lat = np.cos(lat)
    return np.ascontiguousarray(
        np.vstack((cos_lat * np.cos(lon), cos_lat * np.sin(lon), np.sin(lat)))
    )


class NearestIndex:
    """The k points nearest to a query point, by great-circle distance; exact.

    Points are kept sorted by latitude. A query ranks the points of a latitude band
    around it by the dot product of unit vectors (larger is nearer) and computes exact
    haversine distances for the few at the cut-off. Every point outside a band of d
    degrees is more than d degrees of arc away, so when the k-th nearest point of the band
    is closer than that, no other point can beat it; otherwise the band widens to that
    point's distance (or fourfold when it held fewer than k points), up to the whole
    sphere. Near stores that is one product over a few hundred points; in the
    middle of an ocean a few more. There is no special case at the poles or the date
    line: bands run all the way round.
    """

    def __init__(
        self, latitudes: npt.NDArray[np.float64], longitudes: npt.NDArray[np.float64]
    ) -> None:
        latitudes = np.asarray(latitudes, dtype=np.float64)
        longitudes = np.asarray(longitudes, dtype=np.float64)
        # Stable: points at the same latitude keep their order, for ties.
        self._order: list[int] = np.argsort(latitudes, kind="stable").tolist()
        sorted_lat, sorted_lon = latitudes[self._order], longitudes[self._order]
        self._units = unit_vectors(sorted_lat, sorted_lon)
        self._lat_array, self._lon_array = sorted_lat, sorted_lon
        self._lat_list: list[float] = sorted_lat.tolist()
        self._lon_list: list[float] = sorted_lon.tolist()

    def __len__(self) -> int:
        return len(self._order)

    def query(self, latitude: float, longitude: float, k: int = 1) -> list[tuple[int, float]]:
        """Up to `k` (index, metres) pairs, nearest first; ties go to the lower index."""
        count = len(self._order)
        if count == 0 or k <= 0:
            return []
        k = min(k, count)
        lat, lon = math.radians(latitude), math.radians(longitude)
        cos_lat = math.cos(lat)
        point = np.array((cos_lat * math.cos(lon), cos_lat * math.sin(lon), math.sin(lat)))
        band = _FIRST_BAND_DEG
        while True:
            whole = band >= 180.0
            low = 0 if whole else bisect.bisect_left(self._lat_list, latitude - band)
            high = count if whole else bisect.bisect_right(self._lat_list, latitude + band)
            if high - low >= k:
                ranked = self._rank(point, latitude, longitude, low, high, k)
                reach = ranked[-1][0]
                # Anything outside the band is over `band` degrees of arc away.
                if whole or reach < EARTH_RADIUS_M * math.radians(band) * (1 - 1e-9):
                    return [(self._order[i], distance) for distance, i in ranked]
                # The k found are within `reach`: a band that wide holds the answer, and
                # is often much narrower than a fourfold one.
                band = math.degrees(reach / EARTH_RADIUS_M) * (1 + 1e-6)
            else:
                band *= 4

    def _rank(
        self,
        point: npt.NDArray[np.float64],
        latitude: float,
        longitude: float,
        low: int,
        high: int,
        k: int,
    ) -> list[tuple[float, int]]:
        """The k nearest (metres, sorted position) of positions low..high-1, nearest first."""
        dots = point @ self._units[:, low:high]
        size = high - low
        if k == 1:
            best = int(dots.argmax())
            cutoff = float(dots[best])
            if size == 1:
                return [(self._distance(latitude, longitude, low), low)]
            dots[best] = -2.0  # the runner-up tells whether there is a near tie
            if float(dots[int(dots.argmax())]) < cutoff - _DOT_MARGIN:
                return [(self._distance(latitude, longitude, best + low), best + low)]
            dots[best] = cutoff
        elif k == size:
            cutoff = -2.0  # every point of the band
        else:
            cutoff = float(np.partition(dots, size - k)[size - k])
        candidates = (np.flatnonzero(dots >= cutoff - _DOT_MARGIN) + low).tolist()
        if len(candidates) <= _FEW:
            distances = [self._distance(latitude, longitude, i) for i in candidates]
        else:
            distances = haversine_m(
                latitude, longitude, self._lat_array[candidates], self._lon_array[candidates]
            ).tolist()
        # Equal distances: the lower original index first, as a stable brute-force sort.
        ranked = sorted(
            zip(distances, candidates, strict=True),
            key=lambda pair: (pair[0], self._order[pair[1]]),
        )
        return ranked[:k]

    def _distance(self, latitude: float, longitude: float, position: int) -> float:
        return distance_m(latitude, longitude, self._lat_list[position], self._lon_list[position])
