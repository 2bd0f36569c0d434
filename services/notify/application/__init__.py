"""The notify service's use cases, shared by its gRPC edge and its nameko worker."""
