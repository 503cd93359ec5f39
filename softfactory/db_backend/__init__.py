"""SoftFactory's PostgreSQL backend: django-prometheus's instrumented wrapper plus a replica guard."""
