"""``polydiff serve``: the generate API over HTTP, with a durable job queue and a web page.

``store`` keeps jobs in SQLite, ``worker`` runs them (``batching`` samples compatible ones in
one batch), ``app`` is the FastAPI application, ``static/`` the page. See docs/serve.md.
"""
