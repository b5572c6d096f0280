"""Dashboards asking for a snapshot at the same moment share one computation (consumers.dashboard)."""

import asyncio


class SnapshotBatcher:
    """Sockets asking for the same car parks' snapshot at the same time share one (a room of screens coming up, or
    every dashboard reconnecting after a restart, costs a few snapshot queries, not one each).

    A request never shares a computation that started before it asked: events between that start and the
    request would be in neither the snapshot nor the deltas the socket holds back. So it waits for the next one,
    which starts as soon as the running one ends.
    """

    def __init__(self, compute) -> None:
        self.compute = compute  # async (carpark_ids) -> text of the snapshot frame
        self.running: dict[tuple[int, ...], asyncio.Future] = {}
        self.next: dict[tuple[int, ...], asyncio.Future] = {}
        self.tasks: set[asyncio.Task] = set()

    async def get(self, carpark_ids: list[int]) -> str:
        key = tuple(sorted(carpark_ids))
        future = self.next.get(key)
        if future is None:
            future = self.next[key] = asyncio.get_running_loop().create_future()
            if key not in self.running:
                task = asyncio.get_running_loop().create_task(self._run(key))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
        return await asyncio.shield(future)

    async def _run(self, key: tuple[int, ...]) -> None:
        while key in self.next:
            future = self.running[key] = self.next.pop(key)
            try:
                future.set_result(await self.compute(list(key)))
            except Exception as exc:
                future.set_exception(exc)
                future.exception()  # retrieved: a failed snapshot is each asker's to handle, not the loop's
            finally:
                del self.running[key]


_batchers: dict[asyncio.AbstractEventLoop, "SnapshotBatcher"] = {}


def snapshots(compute) -> SnapshotBatcher:
    """This process's snapshot batcher for the running event loop (created on first use)."""
    loop = asyncio.get_running_loop()
    for stale in [other for other in _batchers if other.is_closed()]:
        del _batchers[stale]
    if loop not in _batchers:
        _batchers[loop] = SnapshotBatcher(compute)
    return _batchers[loop]
