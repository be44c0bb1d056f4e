"""User onboarding, from the seed's "Getting Started": create the user, welcome them, audit it.

The user goes into a SQLite users-db, the welcome email into the outbox folder
(.ductape/outbox), the audit entry into audit-db — all declared in ductape.toml.
"""

from ductape_cli import workflow


@workflow(
    "user-onboarding",
    name="User Onboarding",
    description="Onboards new users with welcome email and audit log",
)
async def user_onboarding(ctx):
    created_at = ctx.transform.format_date(ctx.transform.now(), "YYYY-MM-DDTHH:mm:ss")
    user = await ctx.step(
        "create-user",
        lambda: ctx.database.insert(
            database="users-db",
            event="create-user",
            data={"email": ctx.input.email, "name": ctx.input.name, "created_at": created_at},
        ),
        lambda created: ctx.database.delete(
            database="users-db", event="delete-user", where={"id": created["id"]}
        ),
    )
    await ctx.step(
        "send-welcome",
        lambda: ctx.notification.email(
            notification="transactional",
            event="welcome-email",
            recipients=[ctx.input.email],
            subject={"name": ctx.input.name},
            template={"name": ctx.input.name},
        ),
        None,
        {"allow_fail": True},  # an email failure must not undo the signup
    )
    await ctx.step(
        "audit-log",
        lambda: ctx.database.insert(
            database="audit-db",
            event="create-log",
            data={
                "action": "user_created",
                "user_id": user["id"],
                "run_id": ctx.workflow_id,
                "timestamp": created_at,
            },
        ),
    )
    return {"success": True, "userId": user["id"]}
