"""The handler hand-written integrations use: look the caller up, then answer the PBX.

Run by ``bench/run.py`` for comparison only: a 100 ms CRM lookup and a durable SQLite insert
before the 200, on the same uvicorn stack as callbridge.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

DB = sqlite3.connect(sys.argv[2], check_same_thread=False, isolation_level=None)
DB.execute("PRAGMA journal_mode=WAL")
DB.execute("PRAGMA synchronous=FULL")
DB.execute("CREATE TABLE IF NOT EXISTS events (q TEXT)")


async def handle(request: Request) -> PlainTextResponse:
    await asyncio.sleep(0.100)  # the CRM lookup, before answering
    await asyncio.to_thread(DB.execute, "INSERT INTO events VALUES (?)", (str(request.url),))
    return PlainTextResponse("ok\n")


app = Starlette(routes=[Route("/pbx/events", handle)])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
