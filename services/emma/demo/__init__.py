"""Demo data: the offer catalog, the store registry and the demo customers with their loader."""

from pathlib import Path

# Only paths here: importing the package must stay cheap (the loaders import the services' protos).
DEMO_DIR = Path(__file__).resolve().parent
CUSTOMERS_PATH = DEMO_DIR / "customers.yaml"
