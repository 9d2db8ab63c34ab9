"""Many URLs under limits: :func:`fetch_all` and :func:`fetch_iter`.

The worker pool and the two entry points are in ``_engine``; one URL's
result and where its body goes in ``_results``; when a URL is tried again
in ``_retry``; the connection budget and the ``per_host`` groups in
``_limits``.
"""

from ._engine import DEFAULT_TIMEOUT, fetch_all, fetch_iter
from ._results import BodySink, FetchResult, SinkFactory

__all__ = ["DEFAULT_TIMEOUT", "BodySink", "FetchResult", "SinkFactory", "fetch_all", "fetch_iter"]
