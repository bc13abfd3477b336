"""Serve the yizhan API for the benchmark: ``python benchmarks/_serve.py --url URL --port PORT``.

One uvicorn process (one worker, access log off) around ``create_app(Settings(...))``; the staff key is read
from ``YIZHAN_BENCH_STAFF_KEY`` so it does not show in the process list.
"""

from __future__ import annotations

import argparse
import os

import uvicorn

from yizhan.api import create_app
from yizhan.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True, help="SQLAlchemy URL of the benchmark database")
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1")
    args = parser.parse_args()
    settings = Settings(database_url=args.url, staff_key=os.environ.get("YIZHAN_BENCH_STAFF_KEY") or None,
                        rate_limit_per_minute=0)  # the load comes from one address on purpose
    uvicorn.run(create_app(settings), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
