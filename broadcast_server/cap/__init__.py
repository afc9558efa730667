"""CAP 1.2 alerts from warning agencies, aired on the clusters inside their area (docs/cap.md)."""
