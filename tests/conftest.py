import pytest


def pytest_configure(config):
    # also declared in pyproject.toml; registering here keeps `-p no:cacheprovider`
    # / other-rootdir runs free of PytestUnknownMarkWarning
    config.addinivalue_line(
        "markers",
        "netns: needs root and Linux namespaces (real networkd, kernel devices, dockerd, Ignition, cloud-init in throwaway namespaces)",
    )



@pytest.fixture
def lab_harness():
    """The lab harness can run here (else skip; fail under CI=true); afterwards nothing
    of this process is left behind."""
    from netharden.lab.cleanup import leftovers
    from netharden.lab.netns import require_or_skip

    require_or_skip(pytest)
    yield
    assert leftovers(ignore_other_live_owners=True) == []


@pytest.fixture
def doctor_host(tmp_path):
    """A network namespace plus a scratch root for `netharden doctor` (tests/doctor_helpers.py);
    skips without root (fails under CI=true), deleted afterwards."""
    from doctor_helpers import doctor_host as make

    yield from make(tmp_path)
