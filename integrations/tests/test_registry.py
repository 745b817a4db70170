from __future__ import annotations

import pytest

from integrations.base import Connector
from integrations.registry import CONNECTORS, connector_class
from scheduler.models import SourceSystem


@pytest.mark.parametrize("platform", sorted(CONNECTORS))
def test_every_registered_connector_loads_subclasses_connector_and_matches_its_key(platform):
    cls = connector_class(platform)
    assert issubclass(cls, Connector) and cls.platform == platform
    assert platform in SourceSystem.values


def test_an_unknown_platform_is_a_clear_lookup_error():
    with pytest.raises(LookupError, match="No connector is registered for 'myspace'"):
        connector_class("myspace")
