"""`/api/v1/network`: questions about the pipe network as a whole (valve isolation)."""
