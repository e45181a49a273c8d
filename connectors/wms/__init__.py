"""WMS connector: the warehouse's 奇门 (Qimen) calls to the ERP endpoint, received push-only."""
