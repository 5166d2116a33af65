"""``netharden lab``: replay the five incidents in throwaway network namespaces against
the real systemd-networkd and kernel, once with a naive baseline and once with the
profile's own Plan (see ``runner.py``; the scenarios are in ``scenarios/``)."""
