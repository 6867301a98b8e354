"""The trigger engine: proactive moments decided by the mesh and published for delivery."""
