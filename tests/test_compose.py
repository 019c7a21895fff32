"""docker-compose.yml (no Docker engine here): the services, their commands and checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bot.jobs.worker import queue_name
from bot.settings import Settings

COMPOSE = Path(__file__).resolve().parent.parent / "docker-compose.yml"


def services() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_compose_runs_postgres_redis_a_migration_two_servers_and_a_worker():
    found = services()
    assert set(found) == {"postgres", "redis", "migrate", "server-1", "server-2", "worker"}
    commands = {name: s.get("command") for name, s in found.items()}
    assert commands["migrate"] == ["memberbot", "db", "upgrade"]
    assert commands["server-1"] == commands["server-2"] == ["memberbot", "serve"]
    assert commands["worker"] == ["memberbot", "worker"]


def test_every_memberbot_process_uses_postgres_and_redis_after_the_migration():
    for name in ("server-1", "server-2", "worker"):
        service = services()[name]
        env = service["environment"]
        assert env["MEMBERBOT_DATABASE_URL"].startswith("postgresql+asyncpg://")
        assert env["MEMBERBOT_DATABASE_URL"].endswith("@postgres:5432/memberbot")
        assert env["MEMBERBOT_REDIS_URL"] == "redis://redis:6379/0"
        assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert service["depends_on"]["postgres"] == {"condition": "service_healthy"}
        assert service["depends_on"]["redis"] == {"condition": "service_healthy"}
    migrate = services()["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}


def test_health_checks_and_volumes():
    found = services()
    checks = {name: s["healthcheck"] for name, s in found.items()}
    assert checks["postgres"]["test"][:2] == ["CMD", "pg_isready"]
    assert checks["redis"]["test"] == ["CMD", "redis-cli", "ping"]
    assert checks["server-1"] == checks["server-2"]
    assert "http://127.0.0.1:8080/healthz" in checks["server-1"]["test"][-1]
    # The worker's queue under the deployment's prefix, Settings' default when unset.
    worker_check = checks["worker"]["test"][-1]
    prefix = Settings.model_fields["redis_prefix"].default
    assert f"get('MEMBERBOT_REDIS_PREFIX', '{prefix}') + ':queue:health-check'" in worker_check
    assert queue_name(prefix) + ":health-check" == f"{prefix}:queue:health-check"
    assert checks["migrate"] == {"disable": True}
    assert found["postgres"]["volumes"] == ["postgres-data:/var/lib/postgresql/data"]
    assert found["redis"]["volumes"] == ["redis-data:/data"]
    ports = {found[s]["ports"][0] for s in ("server-1", "server-2")}
    assert ports == {"127.0.0.1:8081:8080", "127.0.0.1:8082:8080"}
    volumes = yaml.safe_load(COMPOSE.read_text())["volumes"]
    assert set(volumes) == {"postgres-data", "redis-data", "memberbot-data"}
