"""The `emma` command line: run the mesh, ask for decisions, show the demo."""

from emma.cli.mesh import Mesh, MeshError, MeshPorts

__all__ = ["Mesh", "MeshError", "MeshPorts"]
