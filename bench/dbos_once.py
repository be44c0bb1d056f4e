"""DBOS's whole-process equivalent of `ductape run sample3`: import, launch, run one
three-step workflow, shut down, exit. Timed from outside by run.py.

    python bench/dbos_once.py PATH.sqlite [--tuned]
"""

import sys

from dbos import DBOS


@DBOS.step()
def create_user(name: str) -> dict:
    return {"id": "usr_" + name, "name": name}


@DBOS.step()
def send_welcome(user: dict) -> dict:
    return {"sent_to": user["id"]}


@DBOS.step()
def audit_log(user: dict) -> dict:
    return {"action": "user_created", "user_id": user["id"]}


@DBOS.workflow()
def sample3(name: str) -> dict:
    user = create_user(name)
    send_welcome(user)
    audit_log(user)
    return {"success": True, "userId": user["id"]}


def main() -> None:
    path = sys.argv[1]
    if "--tuned" in sys.argv[2:]:
        # The file was switched to WAL by run.py (SQLite keeps that); synchronous is per connection.
        import sqlalchemy as sa
        from sqlalchemy import event

        @event.listens_for(sa.engine.Engine, "connect")
        def _synchronous_normal(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            dbapi_conn.execute("PRAGMA synchronous=NORMAL")

    DBOS(
        config={
            "name": "bench-once",
            "system_database_url": f"sqlite:///{path}",
            "log_level": "WARNING",
        }
    )
    DBOS.launch()
    result = sample3("jane")
    assert result["success"], result
    DBOS.destroy()


if __name__ == "__main__":
    main()
