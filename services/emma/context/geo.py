"""Points on the earth: validation and great-circle distances."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from emma.runtime.errors import InvalidArgument

# Mean earth radius (IUGG); haversine on a sphere is within 0.5% of the ellipsoid.
EARTH_RADIUS_M = 6_371_008.8


def check_point(latitude: float, longitude: float, field: str) -> None:
    """Raises InvalidArgument naming `field`.latitude/.longitude when out of range or NaN."""
    if not (math.isfinite(latitude) and -90.0 <= latitude <= 90.0):
        raise InvalidArgument(f"{field}.latitude", f"{latitude} is not in [-90, 90]")
    if not (math.isfinite(longitude) and -180.0 <= longitude <= 180.0):
        raise InvalidArgument(f"{field}.longitude", f"{longitude} is not in [-180, 180]")


def distance_m(latitude: float, longitude: float, other_lat: float, other_lon: float) -> float:
    """Great-circle distance in metres between two points (degrees), by haversine."""
    lat1, lat2 = math.radians(latitude), math.radians(other_lat)
    a = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin(math.radians(other_lon - longitude) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, max(0.0, a))))


def haversine_m(
    latitude: float,
    longitude: float,
    latitudes: npt.NDArray[np.float64],
    longitudes: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Great-circle distances in metres from one point to many (degrees in, metres out)."""
    lat1 = math.radians(latitude)
    lat2 = np.radians(latitudes)
    dlat = lat2 - lat1
    dlon = np.radians(longitudes) - math.radians(longitude)
    a = np.sin(dlat / 2) ** 2 + math.cos(lat1) * np.cos(lat2) * np.sin(dlon / 2) ** 2
    # Clip: rounding can push `a` a hair above 1 for antipodal points.
    distances: npt.NDArray[np.float64] = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0, 1)))
    return distances
