"""Statistics: per broadcast and per commune and period, kept fast by rollup tables.

``figures.py`` is pure arithmetic; ``rollups.py`` maintains the rollup tables; ``queries.py`` answers on a
session. The quarterly report, the API and the demo all call :func:`queries.commune_figures`.
"""
