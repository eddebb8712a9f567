"""Service-level timers on tasks: warnings before and after a promised time, escalation."""
