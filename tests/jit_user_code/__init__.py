"""Helper modules for the jit tests, named like application code (not `test_*`)."""
