"""The platform (IBM watsonx.ai): each space's connection, the REST client,
the bucket upload, deployment tracking and the sync that keeps the ledger
true (shared/docs/platform-api.md)."""
