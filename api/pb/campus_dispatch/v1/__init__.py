"""Generated gRPC code (make protos); do not edit."""
