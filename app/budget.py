"""A budget of bytes shared by concurrent requests: each holds its share while it works.

The gateway decodes every upload once to refuse damaged files early. One 4096² 16-bit
RGBA image is 128 MiB decoded; forty at once would be 5 GiB. Requests take their share
of ``decode_budget_bytes`` first and wait while it is spent. A request larger than
the whole budget waits until it can have all of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class ByteBudget:
    def __init__(self, total: int) -> None:
        self.total = total
        self.free = total
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def hold(self, amount: int) -> AsyncIterator[None]:
        share = min(max(amount, 0), self.total)
        async with self._changed:
            await self._changed.wait_for(lambda: self.free >= share)
            self.free -= share
        try:
            yield
        finally:
            async with self._changed:
                self.free += share
                self._changed.notify_all()
