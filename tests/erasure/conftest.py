"""A mesh for erasure: profile, context and decision servers in-process on real Redis, a trigger
engine stepped by the test; the decision server's erasure consumer on, or off for tests that
drive consumers themselves."""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import pytest

from tests.triggers.conftest import Moments, moments_mesh

MeshFactory = Callable[..., AbstractAsyncContextManager[Moments]]


@pytest.fixture
def mesh(redis_url: str) -> MeshFactory:
    """`async with mesh(consume_erasures=...) as moments`: the servers, stopped at the end."""
    return functools.partial(moments_mesh, redis_url)
