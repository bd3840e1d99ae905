"""Mail routes: Graph's ``/me/...`` and ``/users/{id}/...`` forms, and ``/_sim`` control.

Order matters: ``.../messages/delta`` is listed before ``.../messages/{message_id}``.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from m365sim.graph.mail import control, responses
from m365sim.graph.routing import mailbox_routes


def _message_actions(base: str) -> list[BaseRoute]:
    """Attachments, raw MIME and the reply/forward/send actions under one message path."""
    attachment = f"{base}/attachments/{{attachment_id}}"
    return [
        *mailbox_routes(f"{base}/attachments", responses.list_attachments, ["GET"]),
        *mailbox_routes(f"{base}/attachments", responses.add_attachment, ["POST"]),
        *mailbox_routes(f"{attachment}/$value", responses.attachment_value, ["GET"]),
        *mailbox_routes(attachment, responses.get_attachment, ["GET"]),
        *mailbox_routes(attachment, responses.delete_attachment, ["DELETE"]),
        *mailbox_routes(f"{base}/$value", responses.message_value, ["GET"]),
        *mailbox_routes(f"{base}/reply", responses.reply, ["POST"]),
        *mailbox_routes(f"{base}/forward", responses.reply, ["POST"]),
        *mailbox_routes(f"{base}/createReply", responses.create_reply, ["POST"]),
        *mailbox_routes(f"{base}/createForward", responses.create_reply, ["POST"]),
        *mailbox_routes(f"{base}/send", responses.send_draft, ["POST"]),
    ]


routes: list[BaseRoute] = [
    *mailbox_routes("/mailFolders", responses.list_mail_folders, ["GET"]),
    *mailbox_routes("/mailFolders", responses.create_mail_folder, ["POST"]),
    *mailbox_routes("/mailFolders/delta()", responses.mail_folder_delta, ["GET"]),
    *mailbox_routes("/mailFolders/delta", responses.mail_folder_delta, ["GET"]),
    *mailbox_routes("/mailFolders/{folder_id}/messages/delta()", responses.message_delta, ["GET"]),
    *mailbox_routes("/mailFolders/{folder_id}/messages/delta", responses.message_delta, ["GET"]),
    *mailbox_routes("/mailFolders/{folder_id}/messages", responses.list_messages, ["GET"]),
    *mailbox_routes("/mailFolders/{folder_id}/messages", responses.create_message, ["POST"]),
    *mailbox_routes(
        "/mailFolders/{folder_id}/messages/{message_id}", responses.get_message, ["GET"]
    ),
    *mailbox_routes(
        "/mailFolders/{folder_id}/messages/{message_id}", responses.update_message, ["PATCH"]
    ),
    *mailbox_routes(
        "/mailFolders/{folder_id}/messages/{message_id}", responses.delete_message, ["DELETE"]
    ),
    *mailbox_routes(
        "/mailFolders/{folder_id}/messages/{message_id}/move", responses.move_message, ["POST"]
    ),
    *_message_actions("/mailFolders/{folder_id}/messages/{message_id}"),
    *mailbox_routes("/mailFolders/{folder_id}/childFolders", responses.list_child_folders, ["GET"]),
    *mailbox_routes(
        "/mailFolders/{folder_id}/childFolders", responses.create_child_folder, ["POST"]
    ),
    *mailbox_routes("/mailFolders/{folder_id}", responses.get_mail_folder, ["GET"]),
    *mailbox_routes("/mailFolders/{folder_id}", responses.update_mail_folder, ["PATCH"]),
    *mailbox_routes("/mailFolders/{folder_id}", responses.delete_mail_folder, ["DELETE"]),
    *mailbox_routes("/mailFolders/{folder_id}/move", responses.move_mail_folder, ["POST"]),
    *mailbox_routes("/messages/delta()", responses.mailbox_delta_unsupported, ["GET"]),
    *mailbox_routes("/messages/delta", responses.mailbox_delta_unsupported, ["GET"]),
    *mailbox_routes("/messages", responses.list_messages, ["GET"]),
    *mailbox_routes("/messages", responses.create_message, ["POST"]),
    *mailbox_routes("/messages/{message_id}", responses.get_message, ["GET"]),
    *mailbox_routes("/messages/{message_id}", responses.update_message, ["PATCH"]),
    *mailbox_routes("/messages/{message_id}", responses.delete_message, ["DELETE"]),
    *mailbox_routes("/messages/{message_id}/move", responses.move_message, ["POST"]),
    *_message_actions("/messages/{message_id}"),
    *mailbox_routes("/sendMail", responses.send_mail, ["POST"]),
    *mailbox_routes("/translateExchangeIds", responses.translate_exchange_ids, ["POST"]),
    Route("/_sim/mailboxes/{user}/messages/generate", control.generate, methods=["POST"]),
    Route("/_sim/mailboxes/{user}/messages", control.deliver, methods=["POST"]),
    Route("/_sim/mailboxes/{user}/messages", control.list_messages, methods=["GET"]),
    Route("/_sim/mailboxes/{user}/messages/{message_id}", control.update, methods=["PATCH"]),
    Route("/_sim/mailboxes/{user}/messages/{message_id}", control.delete, methods=["DELETE"]),
    Route("/_sim/mailboxes/{user}/messages/{message_id}/move", control.move, methods=["POST"]),
    Route("/_sim/mail/outbound", control.outbound, methods=["GET"]),
    Route("/_sim/mail/settings", control.settings, methods=["GET", "PATCH"]),
]
