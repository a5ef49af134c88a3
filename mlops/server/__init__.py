"""The server profile: docker-compose.yaml, and the same services as processes (`make up` / `make down`)."""
