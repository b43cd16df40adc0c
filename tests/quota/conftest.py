import pytest
from quotafactory import *  # noqa: F401,F403


@pytest.fixture(autouse=True)
def seeded_unit_costs(request):
    """The administrators' cost table as its data migration seeds it. A
    transactional test elsewhere flushes every table when it ends, seeds
    included, so a test that edits a cost would otherwise depend on the order
    the suite runs in."""
    if not {"db", "transactional_db"} & set(request.fixturenames):
        yield
        return
    request.getfixturevalue("transactional_db" if "transactional_db" in request.fixturenames else "db")
    from cfm import catalog
    from cfm.quota.models import UnitCost

    for configuration, units in catalog.UNIT_COSTS.items():
        UnitCost.objects.get_or_create(configuration=configuration, defaults={"units": units})
    yield
