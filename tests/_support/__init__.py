"""What the tests share: vendor configurations, the real servers, cassettes, Celery
workers, the OpenTelemetry SDK, a forward proxy, and Relay (an invented fourth
vendor)."""
