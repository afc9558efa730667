"""The broadcast server: fleet register, bulletins, dispatch over MQTT and coverage reports.

Layout (Cosmic Python style): ``domain`` is pure logic without I/O, ``models`` and ``db`` are the storage
adapters, ``services`` run use cases in one transaction each, and ``cli`` is a thin shell over them.
"""
