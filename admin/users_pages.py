"""The Users page: panel accounts, their roles, enabling and disabling (admins only)."""

from __future__ import annotations

from aiohttp import web

from admin.panel import PANEL, add_route, path_id, render, session_of
from services.panel import ROLE_NAMES, ROLES, PanelError

ADMINS_ONLY: frozenset[str] = frozenset()


async def _page(
    request: web.Request,
    *,
    error: str = "",
    notice: str = "",
    status: int = 200,
    entered: dict[str, str] | None = None,
) -> web.Response:
    return render(
        request,
        "panel/users.html",
        status=status,
        users=await request.app[PANEL].users(),
        roles=[(r, ROLE_NAMES[r]) for r in ROLES],
        role_names=ROLE_NAMES,
        error=error,
        notice=notice,
        entered=entered or {},
    )


async def users_page(request: web.Request) -> web.Response:
    return await _page(request)


async def create_user(request: web.Request) -> web.Response:
    form = await request.post()
    try:
        user = await request.app[PANEL].create_user(
            str(form.get("username", "")),
            str(form.get("role", "")),
            str(form.get("password", "")),
            actor=session_of(request).user.username,
        )
    except PanelError as error:
        entered = {"username": str(form.get("username", "")), "role": str(form.get("role", ""))}
        return await _page(
            request, error=str(error).capitalize() + ".", status=400, entered=entered
        )
    return await _page(request, notice=f"{user.username} can log in now.")


def _user_id(request: web.Request) -> int:
    return path_id(request, "user_id", "user")


async def change_user(request: web.Request) -> web.Response:
    form = await request.post()
    panel = request.app[PANEL]
    me = session_of(request).user
    user_id = _user_id(request)
    try:
        if user_id == me.id:
            raise PanelError("self", "you cannot change your own role or lock yourself out")
        if "role" in form:
            await panel.set_role(user_id, str(form["role"]), actor=me.username)
        if "disabled" in form:
            await panel.set_disabled(user_id, form["disabled"] == "1", actor=me.username)
    except PanelError as error:
        return await _page(request, error=str(error).capitalize() + ".", status=400)
    return await _page(request, notice="Saved.")


def setup_users_pages(app: web.Application) -> None:
    add_route(app, "GET", "/users", users_page, roles=ADMINS_ONLY, title="Users")
    add_route(app, "POST", "/users", create_user, roles=ADMINS_ONLY)
    add_route(app, "POST", "/users/{user_id}", change_user, roles=ADMINS_ONLY)
