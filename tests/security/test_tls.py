"""TLS to the broker: a throwaway CA, a mosquitto TLS listener, the agent's MQTT loop and the server's bus.

The certificates are made here with `cryptography`; the broker's certificate names only ``localhost``,
so connecting to 127.0.0.1 shows the host name check at work.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import queue
import ssl
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from broadcast_server.broker_auth.atomic_file import write_atomically
from broadcast_server.broker_auth.broker_files import BrokerAccount, cluster_username, render_acl, render_password_file
from broadcast_server.broker_auth.password_hash import hash_password, new_password
from broadcast_server.messaging.mqtt_bus import BusError, MqttBus
from broadcast_server.settings import Settings
from mqtt_contract import Channel, Topics, encode
from speaker_agent.config import AgentConfig, ConfigError
from speaker_agent.mqtt_loop import AsyncioPahoDriver, MqttTlsError, secure_agent_client

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

pytestmark = pytest.mark.broker

TOPICS = Topics("bcast")


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _certificate(subject: str, key, issuer_name, issuer_key, *, ca: bool, names=(), usage=None) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer_name or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


class Pki:
    """A CA with a broker certificate for ``localhost`` and a client certificate, and an unrelated CA."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir()
        self.folder = folder
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _certificate("bcast test CA", ca_key, None, None, ca=True)
        self.ca_file = self._write("ca.pem", ca.public_bytes(serialization.Encoding.PEM))
        server_key = ec.generate_private_key(ec.SECP256R1())
        server = _certificate(
            "localhost",
            server_key,
            ca.subject,
            ca_key,
            ca=False,
            names=[x509.DNSName("localhost")],
            usage=ExtendedKeyUsageOID.SERVER_AUTH,
        )
        self.server_cert = self._write("server.pem", server.public_bytes(serialization.Encoding.PEM))
        self.server_key = self._write("server.key", _key_pem(server_key))
        client_key = ec.generate_private_key(ec.SECP256R1())
        client = _certificate("A", client_key, ca.subject, ca_key, ca=False, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
        self.client_cert = self._write("client.pem", client.public_bytes(serialization.Encoding.PEM))
        self.client_key = self._write("client.key", _key_pem(client_key))
        other_key = ec.generate_private_key(ec.SECP256R1())
        other = _certificate("someone else's CA", other_key, None, None, ca=True)
        self.wrong_ca_file = self._write("wrong-ca.pem", other.public_bytes(serialization.Encoding.PEM))

    def _write(self, name: str, data: bytes) -> Path:
        path = self.folder / name
        path.write_bytes(data)
        return path

    def listener(self, *, require_client_certificate: bool = False) -> dict[str, Path]:
        tls = {"cafile": self.ca_file, "certfile": self.server_cert, "keyfile": self.server_key}
        if require_client_certificate:
            tls["require"] = self.ca_file
        return tls


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki") / "pki")


@pytest.fixture
def accounts(tmp_path) -> tuple[Path, Path, dict[str, str]]:
    passwords = {"server": new_password(), "A": new_password()}
    rows = [
        BrokerAccount("bcast-server", hash_password(passwords["server"])),
        BrokerAccount(cluster_username("A"), hash_password(passwords["A"]), "A"),
    ]
    write_atomically(tmp_path / "passwd", render_password_file(rows))
    write_atomically(tmp_path / "acl", render_acl(rows, TOPICS))
    return tmp_path / "passwd", tmp_path / "acl", passwords


def _agent_config(tmp_path: Path, port: int, password: str, **tls) -> AgentConfig:
    return AgentConfig(
        allow_unsigned_commands=True,
        cluster_id="A",
        data_dir=tmp_path / "agent",
        mqtt_host=tls.pop("host", "localhost"),
        mqtt_port=port,
        mqtt_username=cluster_username("A"),
        mqtt_password=password,
        **tls,
    )


async def _connect_on_agent_loop(config: AgentConfig) -> tuple[mqtt.Client, AsyncioPahoDriver, object]:
    """Connect the way the agent does (a paho client driven by the asyncio loop); return the CONNACK or drop."""
    loop = asyncio.get_running_loop()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=config.cluster_id, protocol=mqtt.MQTTv311)
    secure_agent_client(client, config)
    outcome: asyncio.Future[object] = loop.create_future()

    def settle(reason_code: object) -> None:
        if not outcome.done():
            outcome.set_result(reason_code)

    client.on_connect = lambda c, u, f, rc, p: settle(rc)
    client.on_disconnect = lambda c, u, f, rc, p: settle(rc)
    driver = AsyncioPahoDriver(client, loop)
    try:
        client.connect(config.mqtt_host, config.mqtt_port, keepalive=30)
        return client, driver, await asyncio.wait_for(outcome, 15)
    except BaseException:
        driver.close()
        raise


def _close(client: mqtt.Client, driver: AsyncioPahoDriver) -> None:
    client.disconnect()
    driver.close()


async def test_agent_loop_and_server_bus_speak_tls_with_the_ca(tmp_path, pki, accounts, mosquitto_factory) -> None:
    password_file, acl_file, passwords = accounts
    broker = mosquitto_factory(password_file, acl_file, tls=pki.listener())
    settings = Settings(
        mqtt_host="localhost",
        mqtt_port=broker.port,
        mqtt_username="bcast-server",
        mqtt_password=passwords["server"],
        mqtt_tls_ca_file=pki.ca_file,
        mqtt_client_id="bcast-server-tls-test",
    )
    bus = MqttBus.from_settings(settings)
    bus.start()  # the server's own account over TLS, checked against the CA and the name localhost
    try:
        config = _agent_config(tmp_path, broker.port, passwords["A"], mqtt_tls_ca_file=pki.ca_file)
        client, driver, connack = await _connect_on_agent_loop(config)
        try:
            assert not connack.is_failure, connack
            status = {"v": 1, "state": "online", "seq": 1, "firmware": "test"}
            client.publish(TOPICS.for_cluster("A", Channel.STATUS), encode(Channel.STATUS, status), qos=1)
            try:
                event = await asyncio.to_thread(bus.events.get, True, 15)
            except queue.Empty:
                pytest.fail("the server's bus never received the agent's status over TLS")
            assert (event.cluster_id, event.channel, event.message) == ("A", Channel.STATUS, status)
        finally:
            _close(client, driver)
    finally:
        bus.stop()


async def test_wrong_ca_and_wrong_host_name_are_refused(tmp_path, pki, accounts, mosquitto_factory) -> None:
    password_file, acl_file, passwords = accounts
    broker = mosquitto_factory(password_file, acl_file, tls=pki.listener())
    wrong_ca = _agent_config(tmp_path, broker.port, passwords["A"], mqtt_tls_ca_file=pki.wrong_ca_file)
    with pytest.raises(ssl.SSLCertVerificationError):
        await _connect_on_agent_loop(wrong_ca)
    system_cas = _agent_config(tmp_path, broker.port, passwords["A"], mqtt_tls=True)
    with pytest.raises(ssl.SSLCertVerificationError):
        await _connect_on_agent_loop(system_cas)
    # The certificate names localhost, not 127.0.0.1: refused with the check, accepted without it.
    by_address = _agent_config(tmp_path, broker.port, passwords["A"], host="127.0.0.1", mqtt_tls_ca_file=pki.ca_file)
    with pytest.raises(ssl.SSLCertVerificationError, match="IP address mismatch|doesn't match|mismatch"):
        await _connect_on_agent_loop(by_address)
    unchecked = _agent_config(
        tmp_path,
        broker.port,
        passwords["A"],
        host="127.0.0.1",
        mqtt_tls_ca_file=pki.ca_file,
        mqtt_tls_check_hostname=False,
    )
    client, driver, connack = await _connect_on_agent_loop(unchecked)
    _close(client, driver)
    assert not connack.is_failure
    # The server's bus with the wrong CA does not connect either.
    bus = MqttBus.from_settings(
        Settings(
            mqtt_host="localhost",
            mqtt_port=broker.port,
            mqtt_tls_ca_file=pki.wrong_ca_file,
            mqtt_client_id="tls-wrong-ca",
        )
    )
    with pytest.raises(BusError):
        bus.start(timeout_s=5)


async def test_client_certificate_when_the_broker_requires_one(tmp_path, pki, accounts, mosquitto_factory) -> None:
    password_file, acl_file, passwords = accounts
    broker = mosquitto_factory(password_file, acl_file, tls=pki.listener(require_client_certificate=True))
    with_cert = _agent_config(
        tmp_path,
        broker.port,
        passwords["A"],
        mqtt_tls_ca_file=pki.ca_file,
        mqtt_tls_cert_file=pki.client_cert,
        mqtt_tls_key_file=pki.client_key,
    )
    client, driver, connack = await _connect_on_agent_loop(with_cert)
    _close(client, driver)
    assert not connack.is_failure
    without_cert = _agent_config(tmp_path, broker.port, passwords["A"], mqtt_tls_ca_file=pki.ca_file)
    try:
        client, driver, outcome = await _connect_on_agent_loop(without_cert)
    except (ssl.SSLError, OSError):
        pass  # refused during the handshake (TLS 1.2)
    else:  # TLS 1.3: the broker's refusal arrives after the handshake and drops the connection
        _close(client, driver)
        assert outcome.is_failure, outcome


def test_tls_settings_are_checked(tmp_path, pki) -> None:
    with pytest.raises(ConfigError, match="not a readable file"):
        _agent_config(tmp_path, 8883, "x", mqtt_tls_ca_file=tmp_path / "missing.pem")
    with pytest.raises(ConfigError, match="needs mqtt_tls_cert_file"):
        _agent_config(tmp_path, 8883, "x", mqtt_tls_key_file=pki.client_key)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(MqttTlsError):
        _agent_config(tmp_path, 8883, "x", mqtt_tls_ca_file=garbage).mqtt_tls_options.context()
    assert _agent_config(tmp_path, 1883, "x").mqtt_tls_options is None
    config_file = tmp_path / "agent.toml"
    config_file.write_text(
        f'cluster_id = "A"\ndata_dir = "{tmp_path / "agent"}"\nmqtt_port = 8883\nmqtt_tls_ca_file = "{pki.ca_file}"\n'
    )
    loaded = AgentConfig.load(config_file, env={"BCAST_AGENT_MQTT_TLS_CHECK_HOSTNAME": "false"})
    assert loaded.mqtt_tls_options is not None
    assert (loaded.mqtt_tls_options.ca_file, loaded.mqtt_tls_options.check_hostname) == (pki.ca_file, False)
    with pytest.raises(ConfigError, match="mqtt_tls"):
        AgentConfig.load(config_file, env={"BCAST_AGENT_MQTT_TLS": "maybe"})


async def test_the_agent_itself_connects_over_tls(tmp_path, pki, accounts, mosquitto_factory) -> None:
    import httpx

    from speaker_agent import Agent
    from speaker_agent.clock import SystemClock
    from speaker_agent.player import SimulatedPlayer

    password_file, acl_file, passwords = accounts
    broker = mosquitto_factory(password_file, acl_file, tls=pki.listener())
    config = _agent_config(tmp_path, broker.port, passwords["A"], mqtt_tls_ca_file=pki.ca_file)
    clock = SystemClock()
    async with httpx.AsyncClient() as http:
        agent = Agent(config, http=http, player=SimulatedPlayer(clock=clock, cluster_id="A"), clock=clock)
        await agent.start()
        try:
            await asyncio.wait_for(agent.connected.wait(), 10)
        finally:
            await agent.stop()
