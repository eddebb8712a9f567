"""The roles people and programs can hold; what each may do is in server/auth/policy.py."""

ROLES = ("admin", "dispatcher", "supervisor", "crew_member", "viewer", "integration")
