"""`vstore serve`: the HTTP API and the web page, thin over vstore.search.Store. app.py builds the FastAPI
application, files.py serves stored images (by id only) and their thumbnails, payloads.py turns hits into
JSON with timings, server.py runs it with uvicorn; static/ holds the page (plain HTML, CSS and JS)."""
