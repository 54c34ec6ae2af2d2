"""Benchmarks runnable from the installed package (`i2i-fast bench ...`)."""
