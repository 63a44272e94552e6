"""Deliveries per second with two `landmark worker` processes on PostgreSQL, and what a down
target does to the others.

A scratch database (landmark_wh_tput_*) gets an account, S subscriptions (default 4) to a fast
local receiver (a uvicorn process answering 200 at once) and N CI-created events written straight
into the outbox. Two workers are started; the figure is N x S / the time until the receiver has
counted them all (fan-out, claim, send and write-back included; timed from the first arrival, so
the workers' start-up is left out). The second run adds a subscription
to the same events whose target never answers (a socket that accepts and stays silent, so every
attempt waits for its timeout): the healthy subscription's rate should not drop.

Run: .venv/bin/python bench/webhooks_throughput.py [--events 20000] [--workers 2]
"""

import argparse
import socket
import tempfile
from pathlib import Path

from webhook_common import (
    Receiver,
    ScratchDatabase,
    environment,
    machine,
    make_account,
    record_events,
    run,
    start,
    stop,
    subscribe,
    wait,
)

EXTRA: dict[str, str] = {}


def silent_target() -> tuple[socket.socket, str]:
    """A listening socket that never answers: each request to it times out."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}/down"


def measure(events: int, subscriptions: int, workers: int, with_down_target: bool) -> float:
    deliveries = events * subscriptions

    async def prepare(db: ScratchDatabase, target: str, down: str | None) -> None:
        made, _ = await make_account(db.url, "bench")
        for n in range(subscriptions):
            await subscribe(db.url, "bench", made.admin.id, target, f"fast-{n}")
        if down:
            await subscribe(db.url, "bench", made.admin.id, down, "down")
        await record_events(db.url, "bench", events)

    async def scenario() -> float:
        async with ScratchDatabase("tput") as db:
            receiver = Receiver()
            down_socket, down = silent_target() if with_down_target else (None, None)
            processes = []
            try:
                await prepare(db, receiver.url, down)
                env = environment(db.url, LANDMARK_WEBHOOK_TIMEOUT_SECONDS="5", **EXTRA)
                with tempfile.TemporaryDirectory() as tmp:
                    log = Path(tmp) / "workers.log"
                    processes = [start(["worker"], env, log) for _ in range(workers)]
                    wait(lambda: receiver.count() > 0, 60)  # the workers are up
                    first = receiver.count()
                    seconds = wait(lambda: receiver.count() >= deliveries, 600)
                    return (deliveries - first) / seconds
            finally:
                for process in processes:
                    stop(process)
                receiver.stop()
                if down_socket:
                    down_socket.close()

    return float(run(scenario()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10000)
    parser.add_argument("--subscriptions", type=int, default=4, help="to the fast receiver")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-down", action="store_true", help="only the first figure")
    parser.add_argument("--set", action="append", default=[], help="LANDMARK_X=value for workers")
    args = parser.parse_args()
    EXTRA.update(item.split("=", 1) for item in args.set)
    print(f"{machine()}; {args.events} events x {args.subscriptions} subscriptions, "
          f"{args.workers} workers, PostgreSQL")  # fmt: skip
    healthy = measure(args.events, args.subscriptions, args.workers, with_down_target=False)
    print(f"  deliveries/s to a fast receiver:                      {healthy:8.0f}")
    if args.skip_down:
        return
    shared = measure(args.events, args.subscriptions, args.workers, with_down_target=True)
    print(f"  the same, with a silent target subscribed as well:    {shared:8.0f}")


if __name__ == "__main__":
    main()
