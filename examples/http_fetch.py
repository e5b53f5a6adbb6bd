"""A blocking ``urllib.request`` GET against offbench's loopback HTTP server.

``examples/http.toml`` starts the server for each cell (``server = {...}``), passes its
address as ``url`` and one opener per thread made by :func:`make_opener` (``setup``).
"""

import urllib.request


def make_opener() -> urllib.request.OpenerDirector:
    """Return an opener that ignores proxy settings: the server is on 127.0.0.1."""
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(opener: urllib.request.OpenerDirector, url: str, timeout: float = 10.0) -> int:
    """GET ``url`` and read the whole body; return its length."""
    with opener.open(url, timeout=timeout) as response:
        return len(response.read())
