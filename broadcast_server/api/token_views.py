"""The API shape of a token row (shared by /auth/token and /tokens)."""

from __future__ import annotations

from broadcast_server.api.schemas import TokenOut
from broadcast_server.models import ApiToken


def token_out(token: ApiToken, username: str) -> TokenOut:
    return TokenOut(
        id=token.id,  # type: ignore[arg-type]
        user_id=token.user_id,
        username=username,
        name=token.name,
        prefix=token.prefix,
        created_at=token.created_at,
        last_used_at=token.last_used_at,
        revoked_at=token.revoked_at,
    )
