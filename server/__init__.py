"""gRPC adapter over the solver: the only package that imports grpc."""
