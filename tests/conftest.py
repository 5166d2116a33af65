def pytest_configure(config):
    # also declared in pyproject.toml; registering here keeps `-p no:cacheprovider`
    # / other-rootdir runs free of PytestUnknownMarkWarning
    config.addinivalue_line(
        "markers",
        "netns: runs the real systemd-networkd in a throwaway network namespace (needs root)",
    )
