"""Helpers shared by the tests: scripted servers, parser drivers, transports.

Imported one way only: ``from tests.support.servers import ...``.
"""
