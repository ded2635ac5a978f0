"""The chatwire/1 conformance suite: point it at any server's address and learn, requirement by
requirement, what that server meets (``python -m conformance --server HOST:PORT``).

It reaches servers over TCP only and never imports the reference implementation.
"""

#: Bumped when cases are added or their judgement changes; recorded in every report.
SUITE_VERSION = "1.0.0"
