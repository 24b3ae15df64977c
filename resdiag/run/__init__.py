"""Running a probe on a model: devices, seeds, model state, and one function per command."""
