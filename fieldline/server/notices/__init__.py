"""Customer and supervisor notices: an outbox of texts and the backends that deliver them."""
