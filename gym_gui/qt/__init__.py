"""QtCore shells: controllers, the run registry and launcher, the store reader, the app services."""
