"""The context service: local time, daypart, season, holidays and stores."""
