"""Benchmarks of issue 9 and earlier ones: one file per benchmark, run alone or as a suite (`bcast bench`)."""
