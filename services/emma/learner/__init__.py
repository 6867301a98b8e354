"""The learner: joins rewards to logged decisions, trains VW and publishes model snapshots."""

from typing import TYPE_CHECKING

from emma.runtime.lazy import lazy_exports

if TYPE_CHECKING:
    from emma.learner.config import LearnerConfig
    from emma.learner.learner import Learner
    from emma.learner.server import SERVICE_NAME, build_server, main

__all__ = ["SERVICE_NAME", "Learner", "LearnerConfig", "build_server", "main"]

__getattr__ = lazy_exports(
    __name__,
    {
        "LearnerConfig": "emma.learner.config",
        "Learner": "emma.learner.learner",
        "SERVICE_NAME": "emma.learner.server",
        "build_server": "emma.learner.server",
        "main": "emma.learner.server",
    },
)
