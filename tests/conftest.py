def pytest_configure(config):
    # also declared in pyproject.toml; registering here keeps `-p no:cacheprovider`
    # / other-rootdir runs free of PytestUnknownMarkWarning
    config.addinivalue_line(
        "markers",
        "netns: needs root and Linux namespaces (real networkd, kernel devices, dockerd, Ignition, cloud-init in throwaway namespaces)",
    )
