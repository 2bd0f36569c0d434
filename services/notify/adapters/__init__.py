"""The notify service's adapters: its tables and queries, its event catalogues, the API's messages."""
