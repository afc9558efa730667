"""Request dependencies: the runtime and a database session per request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from broadcast_server.db.session import session_scope
from broadcast_server.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    # async: FastAPI runs a plain function dependency in its thread pool, a thread hop on every request.
    return request.app.state.runtime


def get_session(runtime: Annotated[Runtime, Depends(get_runtime)]) -> Iterator[Session]:
    with session_scope(runtime.engine) as session:
        yield session


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
# scope="function": the transaction commits when the route returns, before the response is sent, so a
# client that gets 201 can rely on the row being there for its next request.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
