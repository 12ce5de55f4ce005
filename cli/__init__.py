"""The ``imgenhance`` command: the program's entry point, above the gateway (``app``) and
the workers (``worker``) it starts, so the shared contract (``imgenhance``) imports
neither."""
