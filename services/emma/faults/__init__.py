"""`emma faults`: kills, stops and freezes parts of a live mesh under load and audits the losses."""
