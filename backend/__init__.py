"""The embedded reference backend (aiohttp.web) speaking PROTOCOL.md, and test tools."""

from loguru import logger

logger.disable("backend")  # quiet as a library; `live-listener serve` turns logs on
