"""The backend's access log: a line per HTTP request through loguru, never with a credential.

aiohttp's default access log prints the request line with its query string, where a
v0.2 client may carry `?token=`; this one logs the path alone, redacted.
"""

from __future__ import annotations

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse
from loguru import logger

from pipeline.redaction import redact


class AccessLog(AbstractAccessLogger):
    """`access_log_class` for aiohttp runners: `<peer> "<method> <path>" <status> <seconds>`."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        path = request.path + ("?<query omitted>" if request.query_string else "")
        logger.bind(component="access").info(
            "{}",
            redact(f'{request.remote} "{request.method} {path}" {response.status} {time:.3f}s'),
        )
