"""gradd.server: the gRPC autograd service (`gradd-server`, see docs/server.md)."""
