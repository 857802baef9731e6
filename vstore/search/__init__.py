"""Search in four directions (text/image -> image/caption) over the database: the Store."""
