"""Makes ``pytest conformance/cases --server HOST:PORT`` load the conformance plugin."""

pytest_plugins = ("conformance.plugin",)
