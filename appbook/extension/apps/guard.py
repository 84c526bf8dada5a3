"""App kernels accept widget traffic only, never code.

Standalone Voilà restricts what a page may send to its kernel through the kernel manager's
``allowed_message_types``; that trait is server-wide, so in a server extension it would
also forbid JupyterLab from running notebooks. The guard is instead a kernel WebSocket
connection class (jupyter_server's ``kernel_websocket_connection_class`` setting, read on
every connection) that filters only kernels marked as app kernels by
:class:`~appbook.extension.apps.kernels.AppKernels`; other kernels pass through untouched.
"""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.services.kernels.connection.base import (
    deserialize_binary_message,
    deserialize_msg_from_ws_v1,
)
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection

# What an ipywidgets page needs: comms and kernel info (Voilà's own list, minus shutdown:
# app kernels are shut down by the server, not by the page).
ALLOWED = frozenset(
    {"comm_open", "comm_close", "comm_msg", "comm_info_request", "kernel_info_request"}
)
V1 = "v1.kernel.websocket.jupyter.org"


def guarded(base: type[ZMQChannelsWebsocketConnection]) -> type[ZMQChannelsWebsocketConnection]:
    """``base`` (the server's connection class) with the app-kernel filter in front."""

    class AppKernelConnection(base):  # type: ignore[misc,valid-type]
        """Drops every message but widget traffic on app kernels' WebSockets."""

        def handle_incoming_message(self, incoming_msg: Any) -> None:
            if getattr(self.kernel_manager, "appbook_app", False):
                msg_type = message_type(incoming_msg, self.subprotocol, self.session)
                if msg_type not in ALLOWED:
                    self.log.warning(
                        "Appbook: refused %r from the page of app kernel %s (apps accept "
                        "widget messages only)",
                        msg_type,
                        self.kernel_id,
                    )
                    return
            super().handle_incoming_message(incoming_msg)

    return AppKernelConnection


def message_type(ws_msg: Any, subprotocol: str | None, session: Any) -> str | None:
    """The ``msg_type`` of a message a browser sent, or None if it cannot be read."""
    try:
        if subprotocol == V1:
            _channel, parts = deserialize_msg_from_ws_v1(ws_msg)  # type: ignore[no-untyped-call]
            header = session.unpack(parts[0])
        else:
            msg = (
                deserialize_binary_message(ws_msg)  # type: ignore[no-untyped-call]
                if isinstance(ws_msg, bytes)
                else json.loads(ws_msg)
            )
            header = msg["header"]
        return str(header["msg_type"])
    except Exception:  # malformed: refused like any unknown type
        return None
