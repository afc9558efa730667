"""The amplifier's power relay: a technician holds it off (work on the line, a broken horn) or back on.

A device switches its relay with a command of its own board (`amplifier_command` in the agent's
configuration, e.g. ``gpioset gpiochip0 17={bit}``); without one, the hold is kept in software only:
the agent plays nothing while it is held off.
"""

from __future__ import annotations

import asyncio
import shlex

SWITCH_TIMEOUT_S = 10.0
HELD_OFF = "amplifier held off by a technician's command"  # the reason of every play refused meanwhile
_PLACEHOLDERS = {"state": ("on", "off"), "bit": ("1", "0")}


class AmplifierSwitchError(RuntimeError):
    """The relay command failed, timed out or could not be started."""


def parse_switch_command(text: str) -> tuple[str, ...]:
    """Split `amplifier_command` like a shell would and check its placeholders; ValueError says what is wrong."""
    try:
        argv = tuple(shlex.split(text))
    except ValueError as exc:
        raise ValueError(f"cannot split {text!r}: {exc}") from None
    for on in (True, False):
        try:
            _filled(argv, on)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"{text!r}: only {{state}} (on/off) and {{bit}} (1/0) can be filled ({exc!r})") from None
    return argv


def _filled(argv: tuple[str, ...], on: bool) -> list[str]:
    index = 0 if on else 1
    return [part.format(**{name: values[index] for name, values in _PLACEHOLDERS.items()}) for part in argv]


class AmplifierSwitch:
    """Runs the configured relay command; does nothing when none is configured."""

    def __init__(self, command: str = "") -> None:
        self.argv = parse_switch_command(command) if command.strip() else ()

    async def switch(self, on: bool) -> None:
        """Power the amplifier on or off; raises AmplifierSwitchError if the relay command fails."""
        if not self.argv:
            return
        argv = _filled(self.argv, on)
        try:
            process = await asyncio.create_subprocess_exec(
                *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
            )
        except OSError as exc:
            raise AmplifierSwitchError(f"amplifier command {argv[0]!r} could not start: {exc}") from None
        try:
            _, stderr = await asyncio.wait_for(process.communicate(), SWITCH_TIMEOUT_S)
        except TimeoutError:
            process.kill()
            await process.wait()
            late = f"amplifier command {argv[0]!r} did not finish in {SWITCH_TIMEOUT_S:.0f} s"
            raise AmplifierSwitchError(late) from None
        if process.returncode != 0:
            detail = stderr.decode("utf-8", "replace").strip()[:200]
            raise AmplifierSwitchError(f"amplifier command {argv[0]!r} exited with {process.returncode}: {detail}")
