"""Finance ledger postings, pulled by ``posted_at`` through ordertwin's ledger query API.

The API contract a merchant's finance team implements (``GET /v1/postings``, HMAC-SHA256
signed, keyset paged) is documented in :mod:`connectors.finance.client`, its signature in
:mod:`connectors.finance.signing`, the posting object in :mod:`streams.normalise.sources.finance`.
"""
