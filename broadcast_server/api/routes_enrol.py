"""/api/v1/enrol and the clusters' broker credentials: one-time enrolment tokens, enrolment, revocation.

Enrolment needs no account: the one-time token is the credential. Issuing tokens and revoking need the
right to command devices, inside the caller's part of the tree.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, status
from pydantic import BaseModel, Field
from sqlmodel import Session

from broadcast_server.accounts.principal import Action, Principal
from broadcast_server.accounts.scope import cluster_in_scope
from broadcast_server.api.auth import forbidden, require
from broadcast_server.api.deps import RuntimeDep, SessionDep
from broadcast_server.broker_auth.credentials import (
    MAX_TOKEN_LENGTH,
    EnrolmentRefused,
    NoActiveCredential,
    UnknownCluster,
    enrol_cluster,
    issue_enrolment_token,
    revoke_cluster,
)
from broadcast_server.broker_auth.reload import BrokerReloadError
from broadcast_server.broker_auth.sync import BrokerFiles, BrokerFilesNotConfigured, sync_broker
from broadcast_server.runtime import Runtime
from broadcast_server.signing.keyring import load_or_create_keyring
from mqtt_contract import CLUSTER_ID_PATTERN

log = logging.getLogger(__name__)
router = APIRouter(tags=["broker security"])

ClusterIdPath = Annotated[str, Path(pattern=CLUSTER_ID_PATTERN.pattern, max_length=64)]
DeviceCommander = Annotated[Principal, Depends(require(Action.DEVICE_COMMAND))]


class EnrolIn(BaseModel):
    cluster_id: str = Field(pattern=CLUSTER_ID_PATTERN.pattern, max_length=64)
    token: str = Field(min_length=1, max_length=MAX_TOKEN_LENGTH)


class EnrolOut(BaseModel):
    cluster_id: str
    username: str
    password: str = Field(description="Shown once: the server keeps only the broker's hash of it.")
    topic_root: str
    broker_reloaded: bool = Field(description="False: the broker learns the account at its next reload.")
    trusted_keys: list[str] = Field(
        default_factory=list, description="The server's command-signing public keys the box must trust."
    )


class TokenIn(BaseModel):
    ttl_hours: int | None = Field(default=None, ge=1, le=720)


class TokenOut(BaseModel):
    cluster_id: str
    token: str = Field(description="One-time enrolment token, shown once.")
    expires_at: datetime


class RevocationOut(BaseModel):
    cluster_id: str
    credentials_revoked: int
    tokens_cancelled: int
    broker_reloaded: bool


def _broker_files(runtime: Runtime) -> BrokerFiles:
    try:
        return BrokerFiles.from_settings(runtime.settings)
    except BrokerFilesNotConfigured as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None


def _sync(session: Session, files: BrokerFiles) -> bool:
    """Write the files and commit; True if the broker reloaded. A failed write stores nothing (503)."""
    try:
        return sync_broker(session, files).reloaded
    except BrokerReloadError as exc:
        log.error("broker files written but the broker did not reload: %s", exc)
        return False
    except OSError as exc:
        log.error("cannot write the broker's files: %s", exc)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "cannot write the broker's files") from None


def _cluster_for(session: Session, principal: Principal, cluster_id: str) -> None:
    if not cluster_in_scope(session, principal, cluster_id):
        raise forbidden(f"cluster {cluster_id!r} is outside your part of the tree")


@router.post(
    "/enrol",
    status_code=status.HTTP_201_CREATED,
    responses={403: {"description": "Token unknown, for another cluster, used or expired"}, 503: {}},
)
def enrol(body: EnrolIn, session: SessionDep, runtime: RuntimeDep) -> EnrolOut:
    """Spend a one-time enrolment token: the cluster gets its MQTT username and a fresh password, once."""
    files = _broker_files(runtime)
    try:
        enrolment = enrol_cluster(session, body.cluster_id, body.token, now=datetime.now(UTC))
    except EnrolmentRefused as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    reloaded = _sync(session, files)
    log.info("cluster %s enrolled as %s", enrolment.cluster_id, enrolment.username)
    return EnrolOut(
        cluster_id=enrolment.cluster_id,
        username=enrolment.username,
        password=enrolment.password,
        topic_root=runtime.settings.topic_root,
        broker_reloaded=reloaded,
        # Handed over on the same authenticated exchange, so a new box obeys only this server from the start.
        trusted_keys=load_or_create_keyring(runtime.settings.signing_key_file).trusted_public_keys,
    )


@router.post("/clusters/{cluster_id}/enrolment-tokens", status_code=status.HTTP_201_CREATED, responses={404: {}})
def create_enrolment_token(
    cluster_id: ClusterIdPath,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: DeviceCommander,
    body: TokenIn | None = None,
) -> TokenOut:
    """A one-time enrolment token for a cluster (older unused ones stop working); shown once."""
    _cluster_for(session, principal, cluster_id)
    hours = (body.ttl_hours if body else None) or runtime.settings.enrolment_token_ttl_h
    try:
        issued = issue_enrolment_token(
            session, cluster_id, now=datetime.now(UTC), ttl=timedelta(hours=hours), created_by=principal.username
        )
    except UnknownCluster as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return TokenOut(cluster_id=cluster_id, token=issued.token, expires_at=issued.expires_at)


@router.delete("/clusters/{cluster_id}/credentials", responses={404: {}, 409: {}, 503: {}})
def revoke_credentials(
    cluster_id: ClusterIdPath, session: SessionDep, runtime: RuntimeDep, principal: DeviceCommander
) -> RevocationOut:
    """Revoke the cluster's MQTT account and unused tokens; the broker is reloaded and refuses it."""
    _cluster_for(session, principal, cluster_id)
    files = _broker_files(runtime)
    try:
        revocation = revoke_cluster(session, cluster_id, now=datetime.now(UTC))
    except UnknownCluster as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except NoActiveCredential as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    reloaded = _sync(session, files)
    log.info("cluster %s revoked by %s", cluster_id, principal.username)
    return RevocationOut(
        cluster_id=cluster_id,
        credentials_revoked=revocation.credentials,
        tokens_cancelled=revocation.tokens,
        broker_reloaded=reloaded,
    )
