"""Campus geography: OSM maps → rider networks per mode → cached all-pairs travel tables,
snapping, travel matrices between points, places, and the catalog of bundled campuses."""

from campus_maps.campus import Campus, MapChangedError, RiderNetwork, TravelMatrix, load_campus
from campus_maps.config import (
    MAPS_DIR_ENV,
    MODES,
    CampusConfig,
    CampusConfigError,
    ModeConfig,
    UnknownCampusError,
    UnknownModeError,
    bundled,
    campus_folder,
    campus_ids,
    default_campus_id,
    default_maps_dir,
    load_campus_config,
)
from campus_maps.matrices import (
    CampusMatrices,
    campus_in_process,
    preload_campuses,
    register_campus,
)
from campus_maps.places import Place, PlaceKind
from campus_maps.snap import (
    OffCampusError,
    OutsideServiceAreaError,
    PointOffNetworkError,
    SnappedPoints,
)

__all__ = [
    "MAPS_DIR_ENV",
    "MODES",
    "Campus",
    "CampusConfig",
    "CampusConfigError",
    "CampusMatrices",
    "MapChangedError",
    "ModeConfig",
    "OffCampusError",
    "OutsideServiceAreaError",
    "Place",
    "PlaceKind",
    "PointOffNetworkError",
    "RiderNetwork",
    "SnappedPoints",
    "TravelMatrix",
    "UnknownCampusError",
    "UnknownModeError",
    "bundled",
    "campus_folder",
    "campus_ids",
    "campus_in_process",
    "default_campus_id",
    "default_maps_dir",
    "load_campus",
    "load_campus_config",
    "preload_campuses",
    "register_campus",
]
