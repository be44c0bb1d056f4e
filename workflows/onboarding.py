"""User onboarding, from the seed's "Getting Started": create the user, welcome them, audit it."""

from ductape_cli import workflow


def create_user(email: str, name: str, created_at: int) -> dict:
    if "@" not in email:
        raise ValueError(f"invalid email address {email!r}")
    return {"id": "usr_" + email.split("@")[0].lower(), "email": email, "name": name, "created_at": created_at}


@workflow("user-onboarding", name="User Onboarding", description="Onboards new users with welcome email and audit log")
async def user_onboarding(ctx):
    created_at = ctx.transform.now()
    user = await ctx.step("create-user", lambda: create_user(ctx.input.email, ctx.input.name, created_at))

    def send_welcome():
        if ctx.input.get("fail_email"):
            raise ConnectionError("SMTP server unavailable")
        return {"sent_to": ctx.input.email, "subject": f"Welcome, {ctx.input.name}"}

    await ctx.step("send-welcome", send_welcome, None, {"allow_fail": True})
    await ctx.step("audit-log", lambda: {"action": "user_created", "user_id": user["id"], "timestamp": created_at})
    return {"success": True, "userId": user["id"]}
