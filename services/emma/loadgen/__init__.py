"""`emma bench`: an open-loop load generator for the mesh and a plain gRPC echo-chain floor."""
