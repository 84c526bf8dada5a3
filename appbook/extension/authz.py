"""Who may do what in the server: app users reach their apps and nothing else.

jupyter_server asks its ``Authorizer`` about every ``@authorized`` request (and every kernel
WebSocket) with an action (read, write, execute) and a resource (kernels, contents,
terminals, appbook, ...). Its default lets every signed-in user do everything, which is right
for the people who build apps in JupyterLab and wrong for the people who only use them: a
page served by Voilà talks to a kernel, and whoever can reach ``/api/kernels`` could start a
kernel of their own and run anything in it.

:class:`AppbookAuthorizer` keeps the default for everyone else, and restricts the users named
in ``app_users`` to the ``appbook`` resource (the REST API and the apps) and to reading and
talking to *app* kernels, the ones the server started for their pages (whose sockets accept
widget messages only, see :mod:`appbook.extension.apps.guard`). Starting, listing,
restarting or deleting kernels, contents, terminals, sessions and settings are refused with
403. ``appbook serve`` installs it; with ``jupyter lab``, set
``ServerApp.authorizer_class = "appbook.extension.authz.AppbookAuthorizer"``. The access issue
will fill the app users from Appbook's users and roles instead of a list.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.authorizer import Authorizer
from traitlets import List, Unicode

APP_RESOURCES = {"appbook"}
# What a rendered app page itself asks for, on its own kernel: the kernel model and socket.
APP_KERNEL_ACTIONS = {"read", "execute"}


class AppbookAuthorizer(Authorizer):
    """Everyone may do everything, except ``app_users``, who may only use apps."""

    app_users = List(
        Unicode(),
        help="Names of signed-in users who may only open apps (and use the REST API): no "
        "JupyterLab, no kernels of their own, no files. Empty: nobody is restricted.",
    ).tag(config=True)

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        """True unless ``user`` is an app user asking for something apps do not need."""
        if getattr(user, "username", None) not in self.app_users:
            return True
        if resource in APP_RESOURCES:
            return True
        if resource == "kernels" and action in APP_KERNEL_ACTIONS:
            return is_app_kernel(handler)
        self.log.warning(
            "Appbook: refused %s on %s to app user %r (%s %s)",
            action,
            resource,
            user.username,
            handler.request.method,
            handler.request.path,
        )
        return False


def is_app_kernel(handler: Any) -> bool:
    """Whether the request is about one kernel, and that kernel was started for an app."""
    kernel_id = getattr(handler, "kernel_id", None) or handler.path_kwargs.get("kernel_id")
    if not kernel_id:
        return False  # a list of kernels, or starting one: not an app page's business
    try:
        kernel = handler.kernel_manager.get_kernel(kernel_id)
    except KeyError:
        return False
    return bool(getattr(kernel, "appbook_app", False))
