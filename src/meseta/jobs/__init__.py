"""Chronos-compatible job scheduler: ISO 8601 and cron schedules, dependent jobs, the /v1/scheduler API."""
